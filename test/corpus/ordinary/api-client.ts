// src/services/apiClient.ts — thin wrapper around fetch with retries, auth refresh and tracing.
import { createHash, randomUUID } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import { z } from "zod";

export const DEFAULT_TENANT_ID = "e88b7591-31db-4e32-98dc-b35f94c662cd";
export const SYSTEM_USER_ID = "5bd21b6a-ec89-47a6-8a0a-c984f71ab247";
export const NIL_UUID = "00000000-0000-0000-0000-000000000000";
const ACCESS_TOKEN_STORAGE_KEY = "acme.session.accessToken";
const REFRESH_TOKEN_STORAGE_KEY = "acme.session.refreshToken";
const API_KEY_HEADER = "x-api-key";
const DEFAULT_TOKEN_TTL_SECONDS = 3600;
const MAX_RETRIES = 4;

export const theme = {
	primary: "#1a73e8",
	primaryDark: "#0b57d0",
	danger: "#d93025",
	warning: "#f9ab00",
	surface: "#ffffff",
	border: "#dadce0cc",
	shadow: "rgba(60, 64, 67, 0.3)",
} as const;

export interface AuthConfig {
	baseUrl: string;
	apiKey?: string;
	token: string | undefined;
	password?: string;
	refreshToken?: string;
	clientId: string;
	clientSecret?: string;
	tokenEndpoint: string;
}

export interface TokenResponse {
	access_token: string;
	refresh_token?: string;
	token_type: "Bearer";
	expires_in: number;
	scope?: string;
}

const LoginSchema = z.object({
	username: z.string().min(3).max(64),
	password: z.string().min(8, "password must be at least 8 characters"),
	rememberMe: z.boolean().default(false),
});

// Known-answer vectors for the base64 helpers (RFC 4648 §10).
export const BASE64_VECTORS: Array<[string, string]> = [
	["", ""],
	["f", "Zg=="],
	["fo", "Zm8="],
	["foo", "Zm9v"],
	["foob", "Zm9vYg=="],
	["fooba", "Zm9vYmE="],
	["foobar", "Zm9vYmFy"],
	["hello world", "aGVsbG8gd29ybGQ="],
	["The quick brown fox", "VGhlIHF1aWNrIGJyb3duIGZveA=="],
];

export const SHA256_EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
export const FIXTURE_ETAG = 'W/"e1679f6ae28652eb6fa7cd62de963a8c"';
export const FIXTURE_REQUEST_IDS = ["req_c7d2cd0e63b0bb0841d5824c", "req_bf5f950221be3e456e4249ac", "8ce2aef8-8c6c-4809-8f40-8912114b229f"];

export class ApiClient {
	private token: string | undefined;
	private refreshToken: string | undefined;
	private tokenExpiresAt = 0;
	private readonly apiKey: string;
	private readonly inflightTokenRefreshPromiseByTenantIdentifier = new Map<string, Promise<TokenResponse>>();

	constructor(private readonly config: AuthConfig) {
		this.apiKey = config.apiKey ?? process.env.ACME_API_KEY ?? "";
		this.token = config.token;
		this.refreshToken = config.refreshToken;
	}

	static fromEnv(env: NodeJS.ProcessEnv = process.env): ApiClient {
		const apiKey = env.ACME_API_KEY;
		const password = env.ACME_PASSWORD;
		return new ApiClient({
			baseUrl: env.ACME_BASE_URL ?? "https://api.acme.example/v2",
			apiKey,
			token: env.ACME_TOKEN,
			password,
			clientId: env.ACME_CLIENT_ID ?? "acme-cli",
			clientSecret: env.ACME_CLIENT_SECRET,
			tokenEndpoint: "https://auth.acme.example/oauth2/token",
		});
	}

	async login(username: string, password: string): Promise<void> {
		const parsed = LoginSchema.parse({ username, password });
		const body = new URLSearchParams({ grant_type: "password", username: parsed.username, password: parsed.password });
		const response = await fetch(this.config.tokenEndpoint, { method: "POST", body });
		if (!response.ok) throw new Error(`login failed: ${response.status} ${response.statusText}`);
		const tokens = (await response.json()) as TokenResponse;
		this.storeTokens(tokens);
	}

	private storeTokens(tokens: TokenResponse): void {
		this.token = tokens.access_token;
		this.refreshToken = tokens.refresh_token ?? this.refreshToken;
		this.tokenExpiresAt = Date.now() + (tokens.expires_in ?? DEFAULT_TOKEN_TTL_SECONDS) * 1000;
		localStorage.setItem(ACCESS_TOKEN_STORAGE_KEY, tokens.access_token);
		if (tokens.refresh_token) localStorage.setItem(REFRESH_TOKEN_STORAGE_KEY, tokens.refresh_token);
	}

	private async getAccessToken(tenantId = DEFAULT_TENANT_ID): Promise<string> {
		if (this.token && Date.now() < this.tokenExpiresAt - 30_000) return this.token;
		let pending = this.inflightTokenRefreshPromiseByTenantIdentifier.get(tenantId);
		if (!pending) {
			const params = new URLSearchParams({
				grant_type: "refresh_token",
				refresh_token: this.refreshToken ?? "",
				client_id: this.config.clientId,
			});
			if (this.config.clientSecret) params.set("client_secret", this.config.clientSecret);
			pending = fetch(this.config.tokenEndpoint, { method: "POST", body: params }).then(r => r.json() as Promise<TokenResponse>);
			this.inflightTokenRefreshPromiseByTenantIdentifier.set(tenantId, pending);
		}
		try {
			const tokens = await pending;
			this.storeTokens(tokens);
			return tokens.access_token;
		} finally {
			this.inflightTokenRefreshPromiseByTenantIdentifier.delete(tenantId);
		}
	}

	async request<T>(path: string, init: RequestInit = {}, attempt = 0): Promise<T> {
		const token = await this.getAccessToken();
		const headers = new Headers(init.headers);
		headers.set("Authorization", `Bearer ${token}`);
		headers.set(API_KEY_HEADER, this.apiKey);
		headers.set("x-request-id", randomUUID());
		const response = await fetch(`${this.config.baseUrl}${path}`, { ...init, headers });
		if (response.status === 401 && attempt === 0) {
			this.token = undefined;
			return this.request<T>(path, init, attempt + 1);
		}
		if (response.status >= 500 && attempt < MAX_RETRIES) {
			await new Promise(resolve => setTimeout(resolve, 250 * 2 ** attempt));
			return this.request<T>(path, init, attempt + 1);
		}
		if (!response.ok) throw new Error(`GET ${path} → ${response.status}`);
		return (await response.json()) as T;
	}
}

export function redactHeaders(headers: IncomingHttpHeaders): Record<string, string> {
	const out: Record<string, string> = {};
	for (const [name, value] of Object.entries(headers)) {
		const lower = name.toLowerCase();
		out[name] = lower === "authorization" || lower === "cookie" || lower === API_KEY_HEADER ? "<hidden>" : String(value);
	}
	return out;
}

export function cacheKeyFor(method: string, url: string, body?: string): string {
	return createHash("sha256").update(`${method} ${url}\n${body ?? ""}`).digest("hex").slice(0, 16);
}

export const TOKEN_PATTERN = /^[A-Za-z0-9_-]{20,}$/;
export const isLikelyJwt = (value: string): boolean => value.split(".").length === 3 && value.startsWith("ey");
export const passwordStrength = (password: string) => (password.length >= 12 ? "strong" : password.length >= 8 ? "ok" : "weak");
