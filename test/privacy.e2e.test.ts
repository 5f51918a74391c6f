/**
 * Privacy and size, end to end (issue #3): real headless omp and pi runs against the scripted mock
 * LLM and a local Langfuse receiver, with a small capturing proxy in front of the receiver so that
 * every request body can be searched as raw text.
 *
 * Where a secret is looked for (`collectExport`): every raw request body, every decoded span name,
 * status message and attribute value — JSON-valued attributes parsed again, so a multi-line secret
 * escaped as `\n` is found too — every file left in the spool directory, and stderr. What is looked
 * for (`needlesOf`): the value, each long line of a multi-line value, its last 16 characters, and
 * 16-character windows of a generated secret's random part (so a cut or half-redacted one shows).
 *
 * The secrets that go into the runs:
 *   - the corpus (test/corpus/secrets/*, values listed in expected-secrets.txt), read by `cat`, with
 *     the secret-named variables the corpus shows (.env, `env | sort`, `export` lines) in the run's
 *     environment, as in the shell of the developer the corpus describes;
 *   - "fresh" ones generated per run in the SECRETS.md shapes (so no redactor can pass by knowing
 *     the corpus values), read from a file, and two pasted into the prompt;
 *   - MY_SERVICE_TOKEN, a random value no rule knows, in the environment and echoed by a tool, and
 *     the exporter's own LANGFUSE_SECRET_KEY printed by `env`;
 *   - two LANGFUSE_REDACT_REGEX patterns for in-house formats.
 * Every value is first shown to have reached the agent (omp's own session record holds it), so a
 * secret that omp itself dropped cannot make a test pass by accident.
 *
 * Host facts the tests rely on (omp 18.2.3, pi 0.73.1): omp's in-process `cat` replaces a code file
 * with a structural summary, `cat FILE | cat` keeps the bytes; omp cuts output lines at 768 bytes.
 * omp caps every tool's text result (built-in and extension tools alike) at ≈40–50 KB before any
 * extension sees it, so the 20 MB cases reach langfuse.ts through a 20 MB prompt (@file arguments,
 * ≤5 MB each) in omp, and through an extension tool's result in pi, which does not cap those.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { generateKeyPairSync, randomBytes, randomUUID } from "node:crypto";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { runOmp, runPi, type AgentRunResult } from "./support/hosts.ts";
import { startMockLlm, type MockLlm } from "./support/mock-llm.ts";
import { startReceiver, type ReceivedSpan, type Receiver } from "./support/receiver.ts";
import { attr, io, latest, type } from "./support/spans.ts";

const LANGFUSE_TS = process.env.LANGFUSE_TS ?? new URL("../langfuse.ts", import.meta.url).pathname;
const CORPUS = new URL("./corpus/", import.meta.url).pathname;
const LIMIT_BYTES = 3_500_000;
const RUN_TIMEOUT = 60_000;

type Json = Record<string, any>;

// ─────────────────────────────────────────────────────────────────────────── random secrets

const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const URLSAFE = `${ALNUM}_-`;
function rand(length: number, alphabet = ALNUM): string {
	const bytes = randomBytes(length);
	let out = "";
	for (let i = 0; i < length; i++) out += alphabet[bytes[i]! % alphabet.length];
	return out;
}
const b64url = (value: string | Buffer) => Buffer.from(value).toString("base64url");

/** A secret and the part of it that carries the entropy (a visible prefix like `ghp_` is not secret). */
interface Secret {
	label: string;
	value: string;
	/** The random part; windows of it are searched too, so a half-redacted or cut secret is found. */
	body?: string;
}

function freshSecrets() {
	const anthropicBody = rand(91, URLSAFE) + "AA";
	const githubBody = rand(36);
	const awsIdBody = rand(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567");
	const awsSecret = rand(40, `${ALNUM}+/`);
	const slackBody = `${rand(12, "0123456789")}-${rand(13, "0123456789")}-${rand(24)}`;
	const stripeBody = rand(28);
	const googleBody = rand(35, URLSAFE);
	const jwtPayload = b64url(JSON.stringify({ sub: rand(12), name: "Deploy Bot", iat: 1_700_000_000, jti: rand(16) }));
	const jwtSignature = rand(43, URLSAFE);
	const jwt = `${b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }))}.${jwtPayload}.${jwtSignature}`;
	const bearer = rand(40, URLSAFE);
	const dbPassword = rand(20);
	// a digit in it: a digit-free camelCase-looking value after `password=` reads as code to a redactor
	const password = `${rand(12)}${rand(1, "0123456789")}${rand(5)}`;
	const clientSecret = rand(32);
	const ticket = rand(12, "0123456789");
	const internal = rand(20, "abcdefghijklmnopqrstuvwxyz0123456789");
	const pem = generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString();
	const secrets = {
		anthropic: { label: "fresh Anthropic key", value: `sk-ant-api03-${anthropicBody}`, body: anthropicBody },
		anthropicPrompt: { label: "Anthropic key pasted into the prompt", value: "", body: "" },
		github: { label: "fresh GitHub token", value: `ghp_${githubBody}`, body: githubBody },
		githubPrompt: { label: "GitHub token pasted into the prompt", value: "", body: "" },
		awsId: { label: "fresh AWS access key id", value: `AKIA${awsIdBody}`, body: awsIdBody },
		awsSecret: { label: "fresh AWS secret access key", value: awsSecret, body: awsSecret },
		slack: { label: "fresh Slack bot token", value: `xoxb-${slackBody}`, body: slackBody },
		stripe: { label: "fresh Stripe key", value: `sk_live_${stripeBody}`, body: stripeBody },
		google: { label: "fresh Google API key", value: `AIza${googleBody}`, body: googleBody },
		jwt: { label: "fresh JWT", value: jwt, body: `${jwtPayload}.${jwtSignature}` },
		bearer: { label: "fresh opaque Bearer token", value: bearer, body: bearer },
		dbPassword: { label: "fresh password in a postgres URL", value: dbPassword, body: dbPassword },
		password: { label: "fresh password= assignment", value: password, body: password },
		clientSecret: { label: "fresh JSON client_secret", value: clientSecret, body: clientSecret },
		pem: { label: "fresh ed25519 private key", value: pem.trim() },
		customTicket: { label: "LANGFUSE_REDACT_REGEX pattern 1 (ZX[0-9]{10,16})", value: `ZX${ticket}`, body: ticket },
		customInternal: { label: "LANGFUSE_REDACT_REGEX pattern 2 (acme_int_…)", value: `acme_int_${internal}`, body: internal },
	} satisfies Record<string, Secret>;
	const promptAnthropic = rand(91, URLSAFE) + "AA";
	const promptGithub = rand(36);
	secrets.anthropicPrompt = { label: "Anthropic key pasted into the prompt", value: `sk-ant-api03-${promptAnthropic}`, body: promptAnthropic };
	secrets.githubPrompt = { label: "GitHub token pasted into the prompt", value: `ghp_${promptGithub}`, body: promptGithub };
	return secrets;
}
type Fresh = ReturnType<typeof freshSecrets>;

/** A deploy script as people really leave them lying around: every line has a secret and its context. */
function freshFile(s: Fresh): string {
	return [
		"#!/bin/sh",
		"# deploy.sh — do not commit",
		`export ANTHROPIC_API_KEY=${s.anthropic.value}`,
		`export GITHUB_TOKEN=${s.github.value}`,
		`export DATABASE_URL=postgres://app:${s.dbPassword.value}@db.internal.example.com:5432/app`,
		"[default]",
		`aws_access_key_id = ${s.awsId.value}`,
		`aws_secret_access_key = ${s.awsSecret.value}`,
		`SLACK_BOT_TOKEN=${s.slack.value}`,
		`STRIPE_KEY=${s.stripe.value}`,
		`GOOGLE_API_KEY=${s.google.value}`,
		`curl -H "Authorization: Bearer ${s.bearer.value}" https://api.internal.example.com/v1/deploy`,
		`SESSION_COOKIE=${s.jwt.value}`,
		`{"client_id": "deploy-bot", "client_secret": "${s.clientSecret.value}"}`,
		`password=${s.password.value}`,
		s.pem.value,
		`# internal refs: ticket ${s.customTicket.value}, service ${s.customInternal.value} (see runbook)`,
		"echo deployed",
		"",
	].join("\n");
}
const FRESH_CONTEXT = [
	"export ANTHROPIC_API_KEY=",
	"export GITHUB_TOKEN=",
	"export DATABASE_URL=postgres://",
	"@db.internal.example.com:5432/app",
	"aws_access_key_id",
	"aws_secret_access_key",
	"SLACK_BOT_TOKEN=",
	"STRIPE_KEY=",
	"GOOGLE_API_KEY=",
	'curl -H "Authorization: Bearer ',
	"https://api.internal.example.com/v1/deploy",
	"SESSION_COOKIE=",
	'"client_id": "deploy-bot"',
	'"client_secret"',
	"password=",
	"# internal refs: ticket ",
	"(see runbook)",
	"echo deployed",
];
/** Two user patterns, one with a {m,n} comma (LANGFUSE_REDACT_REGEX is comma-separated). */
const CUSTOM_PATTERNS = "ZX[0-9]{10,16},acme_int_[a-z0-9]{20}";

/** A PNG-looking blob, base64 in a data URL, folded like MIME so omp's 768-byte line cap keeps it whole. */
function pngDataUrl(bytes: number, fold = 0): { url: string; base64: string } {
	const png = Buffer.concat([Buffer.from("89504e470d0a1a0a0000000d49484452", "hex"), randomBytes(bytes)]);
	const base64 = png.toString("base64");
	const body = fold ? (base64.match(new RegExp(`.{1,${fold}}`, "g")) ?? []).join("\n") : base64;
	return { url: `data:image/png;base64,${body}`, base64 };
}
const IMAGE_MARKER = /\[image image\/png [^\]\n]*omitted\]/;

// ─────────────────────────────────────────────────────────────────────────── corpus

interface CorpusFile {
	/** Path relative to the corpus directory, e.g. `secrets/.env`. */
	rel: string;
	text: string;
}

function walkFiles(dir: string, base = dir): string[] {
	if (!existsSync(dir)) return [];
	const out: string[] = [];
	for (const entry of readdirSync(dir, { withFileTypes: true })) {
		const path = join(dir, entry.name);
		if (entry.isDirectory()) out.push(...walkFiles(path, base));
		else if (entry.isFile()) out.push(relative(base, path));
	}
	return out.sort();
}

function readCorpus(kind: "secrets" | "ordinary"): CorpusFile[] {
	return walkFiles(join(CORPUS, kind))
		.filter(rel => rel !== "expected-secrets.txt")
		.map(rel => ({ rel: `${kind}/${rel}`, text: readFileSync(join(CORPUS, kind, rel), "utf8") }));
}

/** expected-secrets.txt: one secret value per line; blank lines and `#` comments ignored. */
function readExpectedSecrets(): Secret[] {
	const file = join(CORPUS, "secrets", "expected-secrets.txt");
	if (!existsSync(file)) return [];
	return readFileSync(file, "utf8")
		.split("\n")
		.map(line => line.replace(/\r$/, ""))
		.filter(line => line.trim() && !line.trimStart().startsWith("#"))
		.map((value, index) => ({ label: `corpus secret #${index + 1}`, value }));
}

/** SECRETS.md's secret-looking variable names: *_KEY, *_TOKEN, *_SECRET, *PASSWORD*, *_PAT, *CREDENTIAL*, AUTH*. */
const SECRET_NAME = /(?:_KEY|_TOKEN|_SECRET|_PAT)$|PASSWORD|CREDENTIAL|^AUTH/i;

/**
 * The developer's live environment as the corpus shows it (the .env file, `env | sort` output,
 * `export` lines in the shell history): every secret-named NAME=value, so the run's environment holds
 * what its tools print — the "live environment" rule catches values no pattern knows. LANGFUSE_*
 * stay the exporter's own (set by the test).
 */
function corpusEnv(files: CorpusFile[]): Record<string, string> {
	const env: Record<string, string> = {};
	for (const file of files) {
		for (const match of file.text.matchAll(/^[ \t]*(?:\d+[ \t]+)?(?:export[ \t]+)?([A-Z][A-Z0-9_]*)=(["']?)([^\s"']+)\2[ \t]*$/gm)) {
			const [, name, , value] = match;
			if (SECRET_NAME.test(name!) && !name!.startsWith("LANGFUSE_") && value!.length >= 8) env[name!] = value!;
		}
	}
	return env;
}

/**
 * The text around secrets that must survive, per SECRETS.md: the NAME of an env-style assignment,
 * scheme and host of a URL with credentials, and the word Bearer.
 */
function contextOf(text: string): string[] {
	const out = new Set<string>();
	for (const match of text.matchAll(/^[ \t]*(?:\d+[ \t]+)?(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)=\S/gm)) out.add(`${match[1]}=`);
	for (const match of text.matchAll(/\b([a-z][a-z0-9+.-]*:\/\/)[^\s:/@]+:[^\s@/]+@([A-Za-z0-9.-]+)/g)) {
		out.add(match[1]!);
		out.add(match[2]!);
	}
	if (/\bBearer\b/.test(text)) out.add("Bearer");
	return [...out];
}

// ─────────────────────────────────────────────────────────────────────────── capture proxy

interface CapturedBody {
	path: string;
	text: string;
	bytes: number;
}

interface Capture {
	url: string;
	bodies: CapturedBody[];
	reset(): void;
	close(): Promise<void>;
}

/** Forwards everything to the receiver and keeps each request body (gunzipped) as text. */
function startCapture(receiver: Receiver): Capture {
	const bodies: CapturedBody[] = [];
	const server = Bun.serve({
		hostname: "127.0.0.1",
		port: 0,
		idleTimeout: 60,
		maxRequestBodySize: 256 * 1024 * 1024,
		async fetch(request) {
			const url = new URL(request.url);
			const raw = new Uint8Array(await request.arrayBuffer());
			const hasBody = request.method !== "GET" && request.method !== "HEAD";
			if (hasBody) {
				let text = "";
				try {
					text = new TextDecoder().decode(/gzip/i.test(request.headers.get("content-encoding") ?? "") ? Bun.gunzipSync(raw) : raw);
				} catch {
					text = new TextDecoder().decode(raw);
				}
				bodies.push({ path: url.pathname, text, bytes: raw.byteLength });
			}
			const headers = new Headers();
			for (const name of ["authorization", "content-type", "content-encoding", "user-agent"]) {
				const value = request.headers.get(name);
				if (value) headers.set(name, value);
			}
			const response = await fetch(`${receiver.url}${url.pathname}${url.search}`, { method: request.method, headers, body: hasBody ? raw : undefined });
			const out = new Headers();
			for (const name of ["content-type", "retry-after"]) {
				const value = response.headers.get(name);
				if (value) out.set(name, value);
			}
			return new Response(await response.arrayBuffer(), { status: response.status, headers: out });
		},
	});
	return {
		url: `http://127.0.0.1:${server.port}`,
		bodies,
		reset: () => void (bodies.length = 0),
		close: () => server.stop(true),
	};
}

// ─────────────────────────────────────────────────────────────────────────── searching an export

interface Place {
	where: string;
	text: string;
}

/** Every string inside a value; strings that hold JSON are parsed and searched too (a few levels). */
function stringsIn(value: unknown, out: string[] = [], depth = 0): string[] {
	if (typeof value === "string") {
		out.push(value);
		const head = value.trimStart()[0];
		if (depth < 4 && (head === "{" || head === "[" || head === '"')) {
			try {
				stringsIn(JSON.parse(value), out, depth + 1);
			} catch {
				/* not JSON */
			}
		}
	} else if (Array.isArray(value)) {
		for (const item of value) stringsIn(item, out, depth);
	} else if (value && typeof value === "object") {
		for (const [key, item] of Object.entries(value)) {
			out.push(key);
			stringsIn(item, out, depth);
		}
	}
	return out;
}

/**
 * An input/output attribute as text: langfuse.ts sends a string as it is (older drafts JSON-encoded
 * it, which this also reads) and anything else as JSON.
 */
const textAttr = (span: ReceivedSpan, key: string): string => {
	const value = attr(span, key);
	if (typeof value !== "string") return value === undefined ? "" : JSON.stringify(value);
	try {
		const decoded = JSON.parse(value);
		if (typeof decoded === "string") return decoded;
	} catch {
		/* a plain string */
	}
	return value;
};
const outputText = (span: ReceivedSpan) => textAttr(span, "langfuse.observation.output");
/** Observation metadata: one JSON attribute, or (older drafts) one attribute per key. */
const metadataOf = (span: ReceivedSpan): Json => {
	const out: Json = {};
	for (const [key, value] of Object.entries(span.attributes)) {
		if (key.startsWith("langfuse.observation.metadata.")) out[key.slice("langfuse.observation.metadata.".length)] = value;
	}
	const whole = io(span, "langfuse.observation.metadata");
	return whole && typeof whole === "object" ? { ...out, ...(whole as Json) } : out;
};

function spoolFiles(dir: string): string[] {
	return walkFiles(dir).map(rel => join(dir, rel));
}

interface Export {
	spans: ReceivedSpan[];
	bodies: CapturedBody[];
	places: Place[];
}

function collectExport(capture: Capture, receiver: Receiver, spoolDir: string, stderr: string): Export {
	const spans = latest(receiver.spans);
	const places: Place[] = capture.bodies.map((body, index) => ({ where: `request body #${index} (${body.path})`, text: body.text }));
	for (const span of receiver.spans) {
		const label = `span "${span.name.slice(0, 40)}" (${String(type(span))})`;
		places.push({ where: `${label} name`, text: span.name });
		if (span.status.message) places.push({ where: `${label} status`, text: span.status.message });
		for (const [key, value] of Object.entries(span.attributes)) places.push({ where: `${label} ${key}`, text: stringsIn(value).join("\n\u0000\n") });
		for (const event of span.events) places.push({ where: `${label} event`, text: stringsIn(event).join("\n\u0000\n") });
	}
	for (const file of spoolFiles(spoolDir)) {
		const text = readFileSync(file, "utf8");
		const decoded: string[] = [];
		for (const line of text.split("\n")) {
			try {
				stringsIn(JSON.parse(line), decoded);
			} catch {
				/* partial line */
			}
		}
		places.push({ where: `spool file ${file}`, text: `${text}\n\u0000\n${decoded.join("\n\u0000\n")}` });
	}
	places.push({ where: "stderr", text: stderr });
	return { spans, bodies: [...capture.bodies], places };
}

/** What must not be found for a secret: the value, each long line of a multi-line value, windows of its random part. */
function needlesOf(secret: Secret): string[] {
	const needles = new Set<string>();
	const lines = secret.value.split("\n").map(line => line.trim());
	if (lines.length > 1) {
		for (const line of lines) if (line.length >= 16 && !/^-----(BEGIN|END)/.test(line)) needles.add(line);
	} else {
		needles.add(secret.value);
		if (secret.value.length >= 32) needles.add(secret.value.slice(-16));
	}
	const body = secret.body ?? "";
	if (body.length >= 24) for (let i = 0; i + 16 <= body.length; i += 8) needles.add(body.slice(i, i + 16));
	return [...needles];
}

function findLeaks(secrets: Secret[], places: Place[]): string[] {
	const leaks: string[] = [];
	for (const secret of secrets) {
		for (const needle of needlesOf(secret)) {
			const hits = places.filter(place => place.text.includes(needle)).map(place => place.where);
			if (hits.length) {
				const shown = needle.length > 60 ? `${needle.slice(0, 60)}…` : needle;
				leaks.push(`${secret.label}: ${JSON.stringify(shown)} in ${[...new Set(hits)].slice(0, 4).join("; ")}${hits.length > 4 ? ` (+${hits.length - 4} more)` : ""}`);
				break;
			}
		}
	}
	return leaks;
}

/** Every string omp itself recorded in the session (user prompt, tool results): proof a value reached the agent. */
function agentRecord(result: AgentRunResult): string {
	return result.sessions.flatMap(session => stringsIn(session.messages)).join("\n\u0000\n");
}

/** omp's own text of each tool result, by tool call id. */
function hostToolResults(result: AgentRunResult): Map<string, string> {
	const out = new Map<string, string>();
	for (const message of result.session?.messages ?? []) {
		if (message.role !== "toolResult") continue;
		const parts: Json[] = Array.isArray(message.content) ? message.content : [];
		out.set(String(message.toolCallId), parts.filter(part => part?.type === "text").map(part => String(part.text)).join("\n"));
	}
	return out;
}

const explain = (result: AgentRunResult) => `exit ${result.code}\nstdout: ${result.stdout.slice(-1500)}\nstderr: ${result.stderr.slice(-1500)}`;

// ─────────────────────────────────────────────────────────────────────────── shared fixtures

let mock: MockLlm;
let receiver: Receiver;
let capture: Capture;
const cleanups: (() => void)[] = [];
const PUBLIC_KEY = `pk-lf-${randomUUID()}`;
const SECRET_KEY = `sk-lf-${randomUUID()}`;

beforeAll(async () => {
	mock = await startMockLlm();
	receiver = await startReceiver();
	capture = startCapture(receiver);
});
afterAll(async () => {
	for (const cleanup of cleanups) cleanup();
	await capture?.close();
	await receiver?.close();
	await mock?.close();
});

function tempDir(prefix: string): string {
	const dir = mkdtempSync(join(tmpdir(), `lf-privacy-${prefix}-`));
	cleanups.push(() => process.env.LF_KEEP_TMP !== "1" && rmSync(dir, { recursive: true, force: true }));
	return dir;
}

function tracingEnv(spoolDir: string, extra: Record<string, string> = {}): Record<string, string> {
	return {
		LANGFUSE_PUBLIC_KEY: PUBLIC_KEY,
		LANGFUSE_SECRET_KEY: SECRET_KEY,
		LANGFUSE_HOST: capture.url,
		LANGFUSE_SPOOL_DIR: spoolDir,
		...extra,
	};
}

async function fresh(): Promise<void> {
	await receiver.reset();
	capture.reset();
	mock.reset();
}

function keep(result: AgentRunResult): AgentRunResult {
	cleanups.push(() => result.cleanup());
	return result;
}

// ─────────────────────────────────────────────────────────────────────────── full mode

/** A run whose tools read every secrets-corpus file, the fresh secrets file, ordinary files and an image. */
interface SecretRun {
	result: AgentRunResult;
	exported: Export;
	spoolDir: string;
	prompt: string;
	fresh: Fresh;
	serviceToken: string;
	secretFiles: CorpusFile[];
	ordinaryFiles: CorpusFile[];
	allSecrets: Secret[];
	promptImage: { url: string; base64: string };
	fileImage: { url: string; base64: string };
	/** Tool observations by the command that ran. */
	toolByCommand: Map<string, ReceivedSpan>;
}

const catCommand = (rel: string) => `cat '${rel}' | cat`;
/** Where the pasted GitHub token starts in the prompt's first line (the trace name keeps 79 characters). */
const TOKEN_AT = 59;

async function secretRun(options: { ordinary: "all" | "one"; receiverMode?: "503" }): Promise<SecretRun> {
	await fresh();
	const secretFiles = readCorpus("secrets");
	const allOrdinary = readCorpus("ordinary");
	const ordinaryFiles = options.ordinary === "all" ? allOrdinary : allOrdinary.filter(file => file.rel === "ordinary/api-client.ts");
	const secrets = freshSecrets();
	const serviceToken = rand(32);
	const cwd = tempDir("cwd");
	cpSync(join(CORPUS, "secrets"), join(cwd, "secrets"), { recursive: true });
	rmSync(join(cwd, "secrets", "expected-secrets.txt"), { force: true });
	cpSync(join(CORPUS, "ordinary"), join(cwd, "ordinary"), { recursive: true });
	mkdirSync(join(cwd, "fresh"));
	writeFileSync(join(cwd, "fresh", "deploy.sh"), freshFile(secrets));
	const fileImage = pngDataUrl(4000, 76);
	writeFileSync(join(cwd, "fresh", "screenshot.txt"), `Screenshot of the failing page:\n${fileImage.url}\n(end of screenshot)\n`);
	const promptImage = pngDataUrl(3000);

	const commands = [
		...secretFiles.map(file => catCommand(file.rel)),
		catCommand("fresh/deploy.sh"),
		"echo $MY_SERVICE_TOKEN",
		"env | grep ^LANGFUSE_ | sort",
		...ordinaryFiles.map(file => catCommand(file.rel)),
		catCommand("fresh/screenshot.txt"),
	];
	// The first line becomes the trace name, cut at 80 characters: the pasted token straddles the cut,
	// so the name would show `ghp_` and 16 characters of it unless the cut respects words.
	const lead = "Ship the release notes, tag v2.4.1 and use my GitHub token ".padEnd(TOKEN_AT);
	const prompt = [
		`${lead}${secrets.githubPrompt.value} for the tag.`,
		`Also deploy with my Anthropic key ${secrets.anthropicPrompt.value} and ship the release.`,
		`Here is the broken page: ${promptImage.url} (as a screenshot).`,
		`Check the files: ${commands.map(command => `RUN<<${command}>>`).join(" ")}`,
	].join("\n");

	const liveEnv = corpusEnv(secretFiles);
	const spoolDir = join(tempDir("spool"), "spool");
	if (options.receiverMode === "503") await receiver.setMode({ status: 503 });
	const result = keep(
		await runOmp({
			prompt,
			cwd,
			mockUrl: mock.url,
			extensions: [LANGFUSE_TS],
			env: tracingEnv(spoolDir, { ...liveEnv, MY_SERVICE_TOKEN: serviceToken, LANGFUSE_DEBUG: "1", LANGFUSE_REDACT_REGEX: CUSTOM_PATTERNS }),
			timeoutMs: RUN_TIMEOUT,
		}),
	);
	await receiver.setMode("ok");
	const exported = collectExport(capture, receiver, spoolDir, result.stderr);
	const toolByCommand = new Map<string, ReceivedSpan>();
	for (const span of exported.spans) {
		if (type(span) !== "tool") continue;
		const input = io(span, "langfuse.observation.input") as Json | undefined;
		if (typeof input?.command === "string") toolByCommand.set(input.command, span);
	}
	const allSecrets: Secret[] = [
		...readExpectedSecrets(),
		...Object.values(secrets),
		{ label: "MY_SERVICE_TOKEN (live environment)", value: serviceToken, body: serviceToken },
		{ label: "LANGFUSE_SECRET_KEY (the exporter's own key)", value: SECRET_KEY },
	];
	return { result, exported, spoolDir, prompt, fresh: secrets, serviceToken, secretFiles, ordinaryFiles, allSecrets, promptImage, fileImage, toolByCommand };
}

describe("omp, LANGFUSE_EXPORT_MODE=full: secrets never leave, everything else arrives intact", () => {
	let run: SecretRun;
	beforeAll(async () => {
		run = await secretRun({ ordinary: "all" });
	}, RUN_TIMEOUT + 30_000);

	test("the corpus is there and the run read all of it", () => {
		expect(run.secretFiles.length, "test/corpus/secrets has no files").toBeGreaterThan(0);
		expect(readExpectedSecrets().length, "test/corpus/secrets/expected-secrets.txt lists no secrets").toBeGreaterThan(0);
		expect(run.ordinaryFiles.length).toBeGreaterThan(0);
		expect(run.result.code, explain(run.result)).toBe(0);
		const commands = run.secretFiles.length + run.ordinaryFiles.length + 4;
		expect(run.result.stdout).toContain(`DONE: ${commands} commands`);
		expect(run.toolByCommand.size).toBe(commands);
	});

	test("every secret really reached the agent (so its absence from the export means redaction)", () => {
		const record = agentRecord(run.result);
		const missing = run.allSecrets
			.filter(secret => !record.includes(secret.value))
			.map(secret => {
				const where = run.secretFiles.some(file => file.text.includes(secret.value)) ? "omp did not pass it on" : "in no corpus file";
				return `${secret.label} (${where}): ${secret.value.slice(0, 40)}`;
			});
		expect(missing).toEqual([]);
	});

	test("no secret value appears in any request body, decoded attribute, spool file or stderr", () => {
		expect(run.exported.bodies.length).toBeGreaterThan(0);
		expect(findLeaks(run.allSecrets, run.exported.places)).toEqual([]);
	});

	test("a key pasted into the prompt is redacted in the trace name and input; the prompt's words stay", () => {
		const roots = run.exported.spans.filter(span => !span.parentSpanId);
		expect(roots).toHaveLength(1);
		const root = roots[0]!;
		const name = String(attr(root, "langfuse.trace.name"));
		const input = textAttr(root, "langfuse.trace.input");
		const pasted = [run.fresh.anthropicPrompt, run.fresh.githubPrompt];
		expect(findLeaks(pasted, [{ where: "trace name", text: name }, { where: "span name", text: root.name }])).toEqual([]);
		expect(findLeaks(pasted, [{ where: "trace input", text: input }])).toEqual([]);
		expect(name.startsWith("Ship the release notes, tag v2.4.1 and use my GitHub token")).toBe(true);
		expect(input).toContain("Ship the release notes, tag v2.4.1 and use my GitHub token");
		expect(input).toContain(" for the tag.");
		expect(input).toContain("Also deploy with my Anthropic key ");
		expect(input).toContain(" and ship the release.");
		expect(input).toMatch(/REDACTED/);
		// the prompt reaches every generation's input as well
		for (const generation of run.exported.spans.filter(span => type(span) === "generation")) {
			expect(findLeaks(pasted, [{ where: "generation input", text: stringsIn(attr(generation, "langfuse.observation.input")).join("\n") }])).toEqual([]);
		}
	});

	test("the text around secrets survives: variable names, URL schemes and hosts, Bearer", () => {
		const lost: string[] = [];
		for (const file of run.secretFiles) {
			const span = run.toolByCommand.get(catCommand(file.rel));
			const output = span ? outputText(span) : "";
			for (const context of contextOf(file.text)) if (!output.includes(context)) lost.push(`${file.rel}: ${context}`);
		}
		const deploy = run.toolByCommand.get(catCommand("fresh/deploy.sh"));
		const deployOutput = deploy ? outputText(deploy) : "";
		for (const context of FRESH_CONTEXT) if (!deployOutput.includes(context)) lost.push(`fresh/deploy.sh: ${context}`);
		const env = run.toolByCommand.get("env | grep ^LANGFUSE_ | sort");
		const envOutput = env ? outputText(env) : "";
		for (const context of ["LANGFUSE_HOST=http://127.0.0.1:", "LANGFUSE_PUBLIC_KEY=", "LANGFUSE_SECRET_KEY="]) if (!envOutput.includes(context)) lost.push(`env: ${context}`);
		expect(lost).toEqual([]);
	});

	test("ordinary files arrive exactly as omp produced them, and a code file verbatim", () => {
		const host = hostToolResults(run.result);
		const altered: string[] = [];
		let verbatim = 0;
		for (const file of run.ordinaryFiles) {
			const span = run.toolByCommand.get(catCommand(file.rel));
			if (!span) {
				altered.push(`${file.rel}: no tool observation`);
				continue;
			}
			const exported = outputText(span);
			const own = host.get(String(metadataOf(span).toolCallId));
			if (exported !== own) {
				const at = [...exported].findIndex((char, index) => char !== own?.[index]);
				altered.push(`${file.rel}: differs from omp's own result at ${at}: ${JSON.stringify(exported.slice(Math.max(0, at - 40), at + 80))} vs ${JSON.stringify(own?.slice(Math.max(0, at - 40), at + 80))}`);
			}
			// omp truncates lines over 768 bytes itself; where it kept the file whole, so must we.
			if (own?.includes(file.text.trimEnd())) {
				verbatim++;
				if (!exported.includes(file.text.trimEnd())) altered.push(`${file.rel}: file content not verbatim in the export`);
			}
		}
		expect(altered).toEqual([]);
		const code = run.toolByCommand.get(catCommand("ordinary/api-client.ts"));
		expect(code && outputText(code)).toContain(readFileSync(join(CORPUS, "ordinary/api-client.ts"), "utf8").trimEnd());
		expect(verbatim).toBeGreaterThanOrEqual(Math.min(5, run.ordinaryFiles.length));
	});

	test("data:image/png;base64 in a tool output and in the prompt arrives as the [image image/png … omitted] marker", () => {
		const screenshot = run.toolByCommand.get(catCommand("fresh/screenshot.txt"));
		const shot = screenshot ? outputText(screenshot) : "";
		expect(shot).toContain("Screenshot of the failing page:");
		expect(shot).toMatch(IMAGE_MARKER);
		expect(shot).toContain("(end of screenshot)");
		const root = run.exported.spans.find(span => !span.parentSpanId)!;
		const input = textAttr(root, "langfuse.trace.input");
		expect(input).toMatch(new RegExp(`Here is the broken page: ${IMAGE_MARKER.source} \\(as a screenshot\\)\\.`));
		const blobs: Secret[] = [
			{ label: "image base64 from the tool output", value: run.fileImage.base64.slice(40, 120), body: run.fileImage.base64.slice(16) },
			{ label: "image base64 from the prompt", value: run.promptImage.base64.slice(40, 120), body: run.promptImage.base64.slice(16) },
		];
		const places = run.exported.places.filter(place => place.where !== "stderr");
		expect(findLeaks(blobs, places)).toEqual([]);
	});

	test("every request stays under 3.5 MB and is accepted", () => {
		expect(receiver.requests.length).toBeGreaterThan(0);
		for (const request of receiver.requests) {
			expect(request.bytes).toBeLessThan(LIMIT_BYTES);
			expect(request.status).toBe(200);
		}
	});
});

describe("omp, Langfuse failing (503): what waits in the spool is redacted too", () => {
	let run: SecretRun;
	beforeAll(async () => {
		run = await secretRun({ ordinary: "one", receiverMode: "503" });
	}, RUN_TIMEOUT + 30_000);

	test("the agent is unaffected and the batches stay on disk", () => {
		expect(run.result.code, explain(run.result)).toBe(0);
		expect(run.result.stdout).toContain("commands");
		expect(receiver.spans).toHaveLength(0);
		const batches = spoolFiles(run.spoolDir).filter(file => /\.jsonl(\.\d+)?$/.test(file));
		expect(batches.length).toBeGreaterThan(0);
		// the spool holds the real payload: the ordinary file is in it
		const spool = run.exported.places.filter(place => place.where.startsWith("spool file")).map(place => place.text).join("\n");
		expect(spool).toContain("export class ApiClient");
	});

	test("no secret value in any spool file or stderr", () => {
		const places = run.exported.places.filter(place => place.where.startsWith("spool file") || place.where === "stderr");
		expect(findLeaks(run.allSecrets, places)).toEqual([]);
	});
});

// ─────────────────────────────────────────────────────────────────────────── metadata_only and off

/** A prompt whose every content part carries a marker no structure field can contain. */
function markedRun() {
	const id = rand(10);
	const marks = {
		prompt: `PROMPTMARK${id}`,
		toolOutput: `TOOLOUTMARK${id}`,
		toolArgument: `ARGMARK${id}`,
		toolError: `ERRMARK${id}`,
	};
	const cwd = tempDir("marked");
	writeFileSync(join(cwd, "notes.txt"), `release notes ${marks.toolOutput}\nline two\n`);
	const prompt = `Please check the ${marks.prompt} release. RUN<<cat notes.txt | cat>> RUN<<true ${marks.toolArgument}>> RUN<<cat /nonexistent-${marks.toolError}>>`;
	return { cwd, prompt, marks };
}

describe("omp, LANGFUSE_EXPORT_MODE=metadata_only: structure only, no content", () => {
	let result: AgentRunResult;
	let exported: Export;
	let marks: ReturnType<typeof markedRun>["marks"];
	beforeAll(async () => {
		await fresh();
		const marked = markedRun();
		marks = marked.marks;
		const spoolDir = join(tempDir("spool"), "spool");
		result = keep(
			await runOmp({
				prompt: marked.prompt,
				cwd: marked.cwd,
				mockUrl: mock.url,
				extensions: [LANGFUSE_TS],
				env: tracingEnv(spoolDir, { LANGFUSE_EXPORT_MODE: "metadata_only", LANGFUSE_DEBUG: "1" }),
				timeoutMs: RUN_TIMEOUT,
			}),
		);
		exported = collectExport(capture, receiver, spoolDir, result.stderr);
	}, RUN_TIMEOUT + 10_000);

	test("the agent is unaffected", () => {
		expect(result.code, explain(result)).toBe(0);
		expect(result.stdout).toContain("DONE: 3 commands");
	});

	test("structure arrives: one trace, turns, generations with model and usage, tools with names and levels", () => {
		const spans = exported.spans;
		const roots = spans.filter(span => !span.parentSpanId);
		expect(roots).toHaveLength(1);
		expect(attr(roots[0]!, "langfuse.trace.name")).toBe("omp prompt 1");
		expect(attr(roots[0]!, "session.id")).toBe(result.sessionId);
		const turns = spans.filter(span => span.name.startsWith("turn"));
		expect(turns.length).toBe(mock.modelCalls().length);
		const generations = spans.filter(span => type(span) === "generation");
		expect(generations).toHaveLength(mock.modelCalls().length);
		for (const generation of generations) {
			expect(attr(generation, "langfuse.observation.model.name")).toBe("mock-model");
			const usage = io(generation, "langfuse.observation.usage_details") as Json;
			expect(usage.input).toBeGreaterThan(0);
			expect(usage.output).toBeGreaterThan(0);
		}
		const tools = spans.filter(span => type(span) === "tool");
		expect(tools.map(tool => tool.name)).toEqual(["bash", "bash", "bash"]);
		const levels = tools.map(tool => attr(tool, "langfuse.observation.level") ?? "DEFAULT");
		expect(levels).toEqual(["DEFAULT", "DEFAULT", "ERROR"]);
		const failed = tools[2]!;
		expect(failed.status.code).toBe(2);
		expect(attr(failed, "langfuse.observation.status_message")).toBe("tool failed");
	});

	test("no input or output attribute on any observation or trace", () => {
		const content = ["langfuse.observation.input", "langfuse.observation.output", "langfuse.trace.input", "langfuse.trace.output"];
		const present = exported.spans.flatMap(span => content.filter(key => attr(span, key) !== undefined).map(key => `${span.name}: ${key}`));
		expect(present).toEqual([]);
	});

	test("no prompt, completion, tool argument, tool output or tool error text anywhere", () => {
		const texts: Secret[] = [
			{ label: "prompt text", value: marks.prompt },
			{ label: "prompt text", value: "release. RUN<<" },
			{ label: "completion", value: "DONE: 3 commands" },
			{ label: "completion", value: "Running command" },
			{ label: "tool output", value: marks.toolOutput },
			{ label: "tool output", value: "line two" },
			{ label: "tool argument", value: marks.toolArgument },
			{ label: "tool argument", value: "notes.txt" },
			{ label: "tool error", value: marks.toolError },
			{ label: "tool error", value: "No such file" },
		];
		expect(exported.bodies.length).toBeGreaterThan(0);
		expect(findLeaks(texts, exported.places)).toEqual([]);
	});
});

describe("omp, LANGFUSE_EXPORT_MODE=off: nothing is sent, the agent runs as without the extension", () => {
	let baseline: AgentRunResult;
	let off: AgentRunResult;
	let spoolDir: string;
	let baselineCalls: string[];
	let offCalls: string[];
	beforeAll(async () => {
		await fresh();
		const marked = markedRun();
		baseline = keep(await runOmp({ prompt: marked.prompt, cwd: marked.cwd, mockUrl: mock.url, timeoutMs: RUN_TIMEOUT }));
		baselineCalls = mock.modelCalls().map(call => call.toolName ?? call.kind);
		await fresh();
		spoolDir = join(tempDir("spool"), "spool");
		off = keep(
			await runOmp({
				prompt: marked.prompt,
				cwd: marked.cwd,
				mockUrl: mock.url,
				extensions: [LANGFUSE_TS],
				env: tracingEnv(spoolDir, { LANGFUSE_EXPORT_MODE: "off", LANGFUSE_DEBUG: "1" }),
				timeoutMs: RUN_TIMEOUT,
			}),
		);
		offCalls = mock.modelCalls().map(call => call.toolName ?? call.kind);
	}, 2 * RUN_TIMEOUT + 10_000);

	test("zero requests reach Langfuse and nothing is spooled", () => {
		expect(capture.bodies).toHaveLength(0);
		expect(receiver.requests).toHaveLength(0);
		expect(spoolFiles(spoolDir)).toEqual([]);
	});

	test("same exit code, same answer, same model and tool calls as without the extension", () => {
		expect(off.code, explain(off)).toBe(baseline.code);
		expect(off.stdout).toBe(baseline.stdout);
		expect(offCalls).toEqual(baselineCalls);
		expect(offCalls).toEqual(["bash", "bash", "bash", "final"]);
	});

	test("at most one [langfuse] line on stderr, saying tracing is off", () => {
		const lines = off.stderr.split("\n").filter(line => line.includes("[langfuse]"));
		expect(lines.length).toBeLessThanOrEqual(1);
		for (const line of lines) expect(line).toMatch(/off/i);
	});
});

// ─────────────────────────────────────────────────────────────────────────── 20 MB

/** A tool for pi (and omp) that returns a command's complete output, uncapped, as its result. */
const BIG_TOOL_EXTENSION = `import { spawnSync } from "node:child_process";
export default function (pi: any) {
	const parameters = pi.zod
		? pi.zod.object({ command: pi.zod.string().describe("shell command") })
		: { type: "object", properties: { command: { type: "string", description: "shell command" } }, required: ["command"] };
	pi.registerTool({
		name: "shell_command",
		label: "Shell (uncapped)",
		description: "Run a shell command and return its complete output",
		loadMode: "essential",
		parameters,
		async execute(_id: string, params: { command: string }) {
			const run = spawnSync("bash", ["-c", params.command], { maxBuffer: 1 << 30, encoding: "utf8" });
			return { content: [{ type: "text", text: run.stdout + run.stderr }], details: { exitCode: run.status } };
		},
	});
}
`;
const TWENTY_MB = "head -c 20000000 /dev/zero | tr '\\0' a | fold -w 100";
const truncatedChars = (text: string) => Math.max(0, ...[...text.matchAll(/([\d,]+) chars truncated/g)].map(match => Number(match[1]!.replace(/,/g, ""))));

function expectRequestsUnderLimit(): void {
	expect(receiver.requests.length).toBeGreaterThan(0);
	const over = receiver.requests.filter(request => request.bytes >= LIMIT_BYTES).map(request => `${request.bytes} bytes (${request.accepted} spans)`);
	expect(over).toEqual([]);
	for (const request of receiver.requests) expect(request.status).toBe(200);
}

describe("20 MB: every request stays under 3.5 MB and the big observation still arrives, shrunk", () => {
	test(
		"omp: a 20 MB prompt (@file arguments) and a 20 MB bash output",
		async () => {
			await fresh();
			const cwd = tempDir("big-omp");
			const files: string[] = [];
			// omp inlines @file arguments up to 5 MB each
			const block = `${"b".repeat(99)}\n`.repeat(49_000);
			for (let i = 1; i <= 4; i++) {
				const file = join(cwd, `big${i}.txt`);
				writeFileSync(file, block);
				files.push(`@${file}`);
			}
			const spoolDir = join(tempDir("spool"), "spool");
			const result = keep(
				await runOmp({
					prompt: `Summarize the files. RUN<<${TWENTY_MB}>>`,
					cwd,
					mockUrl: mock.url,
					extensions: [LANGFUSE_TS],
					args: files,
					// 20 MB is far over the mock model's context window: no compaction, just send it
					config: { compaction: { enabled: false } },
					env: tracingEnv(spoolDir),
					timeoutMs: RUN_TIMEOUT,
				}),
			);
			expect(result.code, explain(result)).toBe(0);
			expect(result.stdout).toContain("DONE: 1 commands");
			expect(JSON.stringify(mock.requests[0]?.body ?? "").length).toBeGreaterThan(19_000_000);
			expectRequestsUnderLimit();
			const spans = latest(receiver.spans);
			const root = spans.find(span => !span.parentSpanId)!;
			const input = textAttr(root, "langfuse.trace.input");
			expect(truncatedChars(input)).toBeGreaterThan(19_000_000);
			expect(input.length).toBeLessThan(200_000);
			const generations = spans.filter(span => type(span) === "generation");
			expect(generations).toHaveLength(mock.modelCalls().length);
			for (const generation of generations) expect(truncatedChars(textAttr(generation, "langfuse.observation.input"))).toBeGreaterThan(19_000_000);
			// omp caps bash output itself (≈50 KB, middle elided, full text kept as an artifact)
			const bash = spans.find(span => type(span) === "tool")!;
			expect(bash.name).toBe("bash");
			const output = outputText(bash);
			expect(output.length).toBeLessThan(100_000);
			expect(output).toMatch(/elided/);
		},
		RUN_TIMEOUT + 10_000,
	);

	test(
		"pi: an extension tool returns 20 MB (pi does not cap extension tools)",
		async () => {
			await fresh();
			const dir = tempDir("big-pi");
			const extension = join(dir, "big-tool.ts");
			writeFileSync(extension, BIG_TOOL_EXTENSION);
			const spoolDir = join(tempDir("spool"), "spool");
			const result = keep(
				await runPi({
					prompt: `Produce a big file. RUN<<${TWENTY_MB}>>`,
					mockUrl: mock.url,
					extensions: [extension, LANGFUSE_TS],
					args: ["--tools", "shell_command"],
					env: tracingEnv(spoolDir),
					timeoutMs: RUN_TIMEOUT,
				}),
			);
			expect(result.code, explain(result)).toBe(0);
			expect(result.stdout).toContain("DONE: 1 commands");
			expect(mock.modelCalls().map(call => call.toolName ?? call.kind)).toEqual(["shell_command", "final"]);
			expectRequestsUnderLimit();
			const spans = latest(receiver.spans);
			const tool = spans.find(span => type(span) === "tool")!;
			expect(tool?.name).toBe("shell_command");
			const output = outputText(tool);
			expect(truncatedChars(output)).toBeGreaterThan(19_000_000);
			expect(output.length).toBeLessThan(200_000);
			expect(output.startsWith("a".repeat(100))).toBe(true);
			expect(spans.filter(span => type(span) === "generation")).toHaveLength(2);
		},
		RUN_TIMEOUT + 10_000,
	);

	test(
		"pi: two 20 MB multibyte outputs with LANGFUSE_MAX_FIELD_CHARS=1000000 still fit (bytes, not characters)",
		async () => {
			await fresh();
			const dir = tempDir("big-pi-utf8");
			const extension = join(dir, "big-tool.ts");
			writeFileSync(extension, BIG_TOOL_EXTENSION);
			const spoolDir = join(tempDir("spool"), "spool");
			const command = "yes '漢字テスト漢字テスト' | head -c 20000000";
			const result = keep(
				await runPi({
					prompt: `Two big outputs. RUN<<${command}>> RUN<<${command}>>`,
					mockUrl: mock.url,
					extensions: [extension, LANGFUSE_TS],
					args: ["--tools", "shell_command"],
					env: tracingEnv(spoolDir, { LANGFUSE_MAX_FIELD_CHARS: "1000000" }),
					timeoutMs: RUN_TIMEOUT,
				}),
			);
			expect(result.code, explain(result)).toBe(0);
			expect(result.stdout).toContain("DONE: 2 commands");
			expectRequestsUnderLimit();
			const spans = latest(receiver.spans);
			const tools = spans.filter(span => type(span) === "tool");
			expect(tools).toHaveLength(2);
			for (const tool of tools) expect(truncatedChars(outputText(tool))).toBeGreaterThan(5_000_000);
			expect(spans.filter(span => type(span) === "generation")).toHaveLength(3);
		},
		RUN_TIMEOUT + 10_000,
	);
});
