// A local Langfuse-compatible receiver for tests.
//
//   POST /api/public/otel/v1/traces   OTLP/HTTP JSON (optionally gzip), strict id/time checks, 200 {}
//   POST /api/public/ingestion        legacy batch {batch:[...]}, 207 {successes, errors}
//   GET  /api/public/health           {status:"OK", version:"3.x-test"}
//   GET  /api/public/projects         {data:[{id:"proj-test", name:"test"}]} (needs auth)
//
// Library: `startReceiver(opts)`; standalone:
//   bun test/support/receiver.ts --port N --out file.jsonl [--request-log req.jsonl] [--public-key pk --secret-key sk]
// prints `listening <url>` and appends every decoded span / accepted event as one JSON line.
// `requestLog` / `--request-log`: one line per OTLP / ingestion POST as Langfuse's own server code reads
// it (../shared/langfuse-server/map.sh): {path, headers: {x-langfuse-*, content-encoding}, body, bytes, status}.
import { appendFileSync } from "node:fs";

export type FailStatus = 400 | 401 | 403 | 429 | 500 | 502 | 503 | 504;

export type ReceiverMode =
	| "ok"
	/** The port refuses connections (server stopped); setMode("ok") restarts it on the same port. */
	| "down"
	/** A self-hosted Langfuse v2: the OTLP path answers 404, ingestion works. */
	| "legacy"
	/**
	 * Langfuse v2's ingestion schema exactly: as "legacy", and every event body is cut to the keys v2's
	 * zod schema knows (unknown keys dropped silently, as zod's default object does): no usageDetails,
	 * costDetails or environment; a generation's tokens and cost live only in `usage`.
	 */
	| "v2"
	/** Answer `status` to the next `times` ingest requests (all of them if `times` is omitted), then ok. */
	| { status: FailStatus; times?: number; retryAfter?: number }
	/** Hold every request this long before answering. */
	| { stallMs: number }
	/** Ingestion: every second event of a batch fails once with 500, succeeds when re-sent. */
	| { partial207: true };

export interface ReceiverOptions {
	/** Port on 127.0.0.1 (default 0 = random free port). */
	port?: number;
	/** Accepted public key (default: any `pk-lf-…`). */
	publicKey?: string;
	/** Accepted secret key (default: any `sk-lf-…`). */
	secretKey?: string;
	/** Append every decoded span / accepted event as a JSON line to this file. */
	outFile?: string;
	/** Initial mode (default "ok"). */
	mode?: ReceiverMode;
	/**
	 * Append one JSON line per OTLP / ingestion POST that reached decoding (auth ok, no forced failure,
	 * gunzipped, valid JSON): `{path, headers, body, bytes, status}` — `headers` holds the request's
	 * `x-langfuse-*` headers and `content-encoding`, `body` the decoded JSON, `bytes` the wire size,
	 * `status` the receiver's answer (400 when its own checks rejected the request). This is the input
	 * of Langfuse's server replay (`map.sh`).
	 */
	requestLog?: string;
}

export interface SpanStatus {
	code?: number;
	message?: string;
}

export interface SpanEvent {
	name: string;
	timeNs: string;
	attributes: Record<string, unknown>;
}

export interface ReceivedSpan {
	traceId: string;
	spanId: string;
	parentSpanId?: string;
	name: string;
	kind?: number;
	startNs: string;
	endNs: string;
	attributes: Record<string, unknown>;
	resource: Record<string, unknown>;
	scope: { name?: string; version?: string };
	status: SpanStatus;
	events: SpanEvent[];
	/** Index into `receiver.requests` of the request that carried this span. */
	requestIndex: number;
}

export interface IngestionEvent {
	id: string;
	type: string;
	timestamp: string;
	body: Record<string, unknown>;
	metadata?: unknown;
	requestIndex: number;
}

export interface ReceivedRequest {
	method: string;
	path: string;
	status: number;
	/** Body size as received on the wire (compressed size when gzipped). */
	bytes: number;
	authOk: boolean;
	/** The public key of the Basic auth header (whether accepted or not): which project a request is for. */
	publicKey?: string;
	/** Date.now() when the request arrived. */
	at: number;
	gzip: boolean;
	/** Spans accepted by this request (OTLP) / events accepted (ingestion). */
	accepted: number;
	/** Why a 4xx was returned, when it was. */
	error?: string;
}

export interface Receiver {
	/** Base URL to use as the Langfuse host, e.g. http://127.0.0.1:40123 (no trailing slash). */
	readonly url: string;
	readonly port: number;
	readonly otlpUrl: string;
	readonly ingestionUrl: string;
	readonly spans: ReceivedSpan[];
	readonly events: IngestionEvent[];
	readonly requests: ReceivedRequest[];
	readonly mode: ReceiverMode;
	/** Change the failure mode; await it when switching to or from "down". */
	setMode(mode: ReceiverMode): Promise<void>;
	/** Clear spans, events, requests and failure bookkeeping; mode back to "ok". */
	reset(): Promise<void>;
	close(): Promise<void>;
	/** Poll (every 20 ms) until pred holds; resolves with the spans, throws after timeoutMs (default 10 s). */
	waitFor(pred: (spans: ReceivedSpan[], r: Receiver) => boolean, timeoutMs?: number): Promise<ReceivedSpan[]>;
	/** spanId → how many times a span with that id arrived (duplicates show as > 1). */
	spanCountsById(): Record<string, number>;
	/** event id → how many times it was accepted. */
	eventCountsById(): Record<string, number>;
	/** The Authorization header value for the given keys. */
	authHeader(publicKey?: string, secretKey?: string): string;
}

export const DEFAULT_PUBLIC_KEY = "pk-lf-test";
export const DEFAULT_SECRET_KEY = "sk-lf-test";

export function basicAuth(publicKey: string, secretKey: string): string {
	return "Basic " + Buffer.from(`${publicKey}:${secretKey}`).toString("base64");
}

const TRACE_ID = /^[0-9a-f]{32}$/;
const SPAN_ID = /^[0-9a-f]{16}$/;
const DECIMAL = /^[0-9]+$/;

type Json = Record<string, any>;

/** Decode an OTLP AnyValue. */
export function decodeAnyValue(v: unknown): unknown {
	if (!v || typeof v !== "object") return undefined;
	const o = v as Json;
	if ("stringValue" in o) return o.stringValue;
	if ("intValue" in o) return typeof o.intValue === "string" ? Number(o.intValue) : o.intValue;
	if ("doubleValue" in o) return typeof o.doubleValue === "string" ? Number(o.doubleValue) : o.doubleValue;
	if ("boolValue" in o) return o.boolValue;
	if ("arrayValue" in o) return (Array.isArray(o.arrayValue?.values) ? o.arrayValue.values : []).map(decodeAnyValue);
	if ("kvlistValue" in o) return decodeAttributes(o.kvlistValue?.values);
	if ("bytesValue" in o) return o.bytesValue;
	return undefined;
}

export function decodeAttributes(attrs: unknown): Record<string, unknown> {
	const out: Record<string, unknown> = {};
	if (!Array.isArray(attrs)) return out;
	for (const a of attrs) {
		if (a && typeof a === "object" && typeof (a as Json).key === "string") out[(a as Json).key] = decodeAnyValue((a as Json).value);
	}
	return out;
}

function isTime(v: unknown): boolean {
	return typeof v === "string" && DECIMAL.test(v);
}

/** Validate and decode an OTLP/JSON export request. Returns the spans or an error string. */
export function decodeOtlp(body: unknown, requestIndex: number): ReceivedSpan[] | string {
	if (!body || typeof body !== "object" || !Array.isArray((body as Json).resourceSpans))
		return "body must be {resourceSpans: [...]}";
	const spans: ReceivedSpan[] = [];
	for (const rs of (body as Json).resourceSpans as Json[]) {
		const resource = decodeAttributes(rs?.resource?.attributes);
		for (const ss of Array.isArray(rs?.scopeSpans) ? (rs.scopeSpans as Json[]) : []) {
			const scope = { name: ss?.scope?.name, version: ss?.scope?.version };
			for (const s of Array.isArray(ss?.spans) ? (ss.spans as Json[]) : []) {
				if (typeof s?.traceId !== "string" || !TRACE_ID.test(s.traceId))
					return `invalid traceId ${JSON.stringify(s?.traceId)} (want 32 lowercase hex)`;
				if (typeof s.spanId !== "string" || !SPAN_ID.test(s.spanId))
					return `invalid spanId ${JSON.stringify(s.spanId)} (want 16 lowercase hex)`;
				if (s.parentSpanId !== undefined && s.parentSpanId !== "" && (typeof s.parentSpanId !== "string" || !SPAN_ID.test(s.parentSpanId)))
					return `invalid parentSpanId ${JSON.stringify(s.parentSpanId)} (want 16 lowercase hex)`;
				if (!isTime(s.startTimeUnixNano)) return `startTimeUnixNano must be a decimal string, got ${JSON.stringify(s.startTimeUnixNano)}`;
				if (!isTime(s.endTimeUnixNano)) return `endTimeUnixNano must be a decimal string, got ${JSON.stringify(s.endTimeUnixNano)}`;
				if (typeof s.name !== "string") return `span ${s.spanId}: name must be a string`;
				const span: ReceivedSpan = {
					traceId: s.traceId,
					spanId: s.spanId,
					name: s.name,
					startNs: s.startTimeUnixNano,
					endNs: s.endTimeUnixNano,
					attributes: decodeAttributes(s.attributes),
					resource,
					scope,
					status: s.status && typeof s.status === "object" ? { code: s.status.code, message: s.status.message } : {},
					events: (Array.isArray(s.events) ? (s.events as Json[]) : []).map(e => ({
						name: String(e?.name ?? ""),
						timeNs: String(e?.timeUnixNano ?? ""),
						attributes: decodeAttributes(e?.attributes),
					})),
					requestIndex,
				};
				if (s.parentSpanId) span.parentSpanId = s.parentSpanId;
				if (typeof s.kind === "number") span.kind = s.kind;
				spans.push(span);
			}
		}
	}
	return spans;
}

/** Body keys Langfuse v2 (2.95) reads per event type; zod drops every other key without an error. */
const V2_TRACE_KEYS = ["id", "timestamp", "name", "externalId", "input", "output", "sessionId", "release", "version", "userId", "metadata", "tags", "public"];
const V2_OBSERVATION_KEYS = ["id", "traceId", "name", "startTime", "endTime", "metadata", "input", "output", "level", "statusMessage", "parentObservationId", "version"];
const V2_GENERATION_KEYS = [...V2_OBSERVATION_KEYS, "completionStartTime", "model", "modelParameters", "usage", "promptName", "promptVersion"];
const V2_USAGE_KEYS = ["input", "output", "total", "unit", "inputCost", "outputCost", "totalCost", "promptTokens", "completionTokens", "totalTokens"];

const pick = (object: Json, keys: string[]): Json => Object.fromEntries(Object.entries(object).filter(([key]) => keys.includes(key)));

/** An event body as Langfuse v2 stores it: only the keys its schema knows. */
export function v2Body(type: string, body: Json): Json {
	if (type === "trace-create") return pick(body, V2_TRACE_KEYS);
	if (type.startsWith("generation-")) {
		const out = pick(body, V2_GENERATION_KEYS);
		if (out.usage && typeof out.usage === "object") out.usage = pick(out.usage, V2_USAGE_KEYS);
		return out;
	}
	if (type.startsWith("span-") || type === "event-create") return pick(body, V2_OBSERVATION_KEYS);
	return body;
}

function validateEvent(e: unknown): string | undefined {
	if (!e || typeof e !== "object") return "event must be an object";
	const o = e as Json;
	if (typeof o.id !== "string" || !o.id) return "event.id must be a non-empty string";
	if (typeof o.type !== "string" || !o.type) return "event.type must be a string";
	if (typeof o.timestamp !== "string" || Number.isNaN(Date.parse(o.timestamp))) return "event.timestamp must be an ISO date string";
	if (!o.body || typeof o.body !== "object") return "event.body must be an object";
	if (o.type.endsWith("-create") && o.type !== "sdk-log" && (typeof o.body.id !== "string" || !o.body.id))
		return "body.id is required on create events";
	return undefined;
}

export async function startReceiver(opts: ReceiverOptions = {}): Promise<Receiver> {
	const spans: ReceivedSpan[] = [];
	const events: IngestionEvent[] = [];
	const requests: ReceivedRequest[] = [];
	let mode: ReceiverMode = opts.mode ?? "ok";
	let failLeft = Infinity;
	const failedOnce = new Set<string>();

	const authOk = (header: string | null): boolean => {
		if (!header?.startsWith("Basic ")) return false;
		let decoded: string;
		try {
			decoded = Buffer.from(header.slice(6).trim(), "base64").toString("utf8");
		} catch {
			return false;
		}
		const i = decoded.indexOf(":");
		if (i < 0) return false;
		const pk = decoded.slice(0, i);
		const sk = decoded.slice(i + 1);
		const pkOk = opts.publicKey !== undefined ? pk === opts.publicKey : /^pk-lf-\S+$/.test(pk);
		const skOk = opts.secretKey !== undefined ? sk === opts.secretKey : /^sk-lf-\S+$/.test(sk);
		return pkOk && skOk;
	};

	const publicKeyOf = (header: string | null): string | undefined => {
		if (!header?.startsWith("Basic ")) return undefined;
		const decoded = Buffer.from(header.slice(6).trim(), "base64").toString("utf8");
		return decoded.includes(":") ? decoded.slice(0, decoded.indexOf(":")) : undefined;
	};

	const out = (line: Json) => {
		if (!opts.outFile) return;
		try {
			appendFileSync(opts.outFile, JSON.stringify(line) + "\n");
		} catch {
			/* ignore */
		}
	};

	/** The request as Langfuse's server replay reads it; written once the answer is known. */
	const logRequest = (req: Request, path: string, body: unknown, bytes: number, status: number) => {
		if (!opts.requestLog) return;
		const headers: Record<string, string> = {};
		req.headers.forEach((value, key) => {
			const k = key.toLowerCase();
			if (k.startsWith("x-langfuse-") || k === "content-encoding") headers[k] = value;
		});
		try {
			appendFileSync(opts.requestLog, JSON.stringify({ path, headers, body, bytes, status }) + "\n");
		} catch {
			/* ignore */
		}
	};

	async function handle(req: Request): Promise<Response> {
		const url = new URL(req.url);
		const path = url.pathname.replace(/\/+$/, "");
		const rec: ReceivedRequest = {
			method: req.method,
			path,
			status: 0,
			bytes: 0,
			authOk: authOk(req.headers.get("authorization")),
			publicKey: publicKeyOf(req.headers.get("authorization")),
			at: Date.now(),
			gzip: /gzip/i.test(req.headers.get("content-encoding") ?? ""),
			accepted: 0,
		};
		const index = requests.length;
		requests.push(rec);
		const raw = req.method === "POST" || req.method === "PUT" ? new Uint8Array(await req.arrayBuffer()) : new Uint8Array();
		rec.bytes = raw.byteLength;
		const reply = (status: number, body: unknown, headers?: Record<string, string>, error?: string): Response => {
			rec.status = status;
			if (error) rec.error = error;
			if (typeof body === "string") return new Response(body, { status, headers });
			return Response.json(body, { status, headers });
		};

		if (typeof mode === "object" && "stallMs" in mode) await Bun.sleep(mode.stallMs);

		if (req.method === "GET" && path === "/api/public/health")
			return reply(200, { status: "OK", version: mode === "legacy" || mode === "v2" ? "2.x-test" : "3.x-test" });
		if (req.method === "GET" && path === "/api/public/projects") {
			if (!rec.authOk) return reply(401, { message: "Invalid credentials" }, undefined, "auth");
			return reply(200, { data: [{ id: "proj-test", name: "test" }] });
		}
		const isOtlp = req.method === "POST" && path === "/api/public/otel/v1/traces";
		const isIngest = req.method === "POST" && path === "/api/public/ingestion";
		if (!isOtlp && !isIngest) return reply(404, { message: "not found" });
		if (isOtlp && (mode === "legacy" || mode === "v2")) return reply(404, "Not Found", { "content-type": "text/plain" });

		if (typeof mode === "object" && "status" in mode && failLeft > 0) {
			failLeft--;
			const { status, retryAfter } = mode;
			if (failLeft === 0) mode = "ok";
			if (status === 429) {
				const retry = String(retryAfter ?? 1);
				return reply(429, "Too Many Requests", { "retry-after": retry, "content-type": "text/plain" }, "forced 429");
			}
			const headers: Record<string, string> | undefined = retryAfter !== undefined ? { "retry-after": String(retryAfter) } : undefined;
			return reply(status, { message: `forced ${status}` }, headers, `forced ${status}`);
		}
		if (!rec.authOk) return reply(401, { message: "Invalid credentials. Confirm that you've configured the correct host." }, undefined, "auth");

		let bytes = raw;
		if (rec.gzip) {
			try {
				bytes = Bun.gunzipSync(raw);
			} catch {
				return reply(400, { message: "invalid gzip body" }, undefined, "gzip");
			}
		}
		const ct = req.headers.get("content-type") ?? "";
		if (isOtlp && /protobuf/i.test(ct)) return reply(415, { message: "this test receiver only decodes OTLP JSON" }, undefined, "protobuf");
		let body: unknown;
		try {
			body = JSON.parse(new TextDecoder().decode(bytes));
		} catch {
			return reply(400, { message: "body is not JSON" }, undefined, "json");
		}

		if (isOtlp) {
			const decoded = decodeOtlp(body, index);
			logRequest(req, path, body, rec.bytes, typeof decoded === "string" ? 400 : 200);
			if (typeof decoded === "string") return reply(400, { message: decoded }, undefined, decoded);
			for (const s of decoded) {
				spans.push(s);
				out({ record: "span", ...s });
			}
			rec.accepted = decoded.length;
			return reply(200, {});
		}

		// legacy ingestion
		const batch = body && typeof body === "object" ? (body as Json).batch : undefined;
		logRequest(req, path, body, rec.bytes, Array.isArray(batch) ? 207 : 400);
		if (!Array.isArray(batch)) return reply(400, { message: "body must be {batch: [...]}" }, undefined, "batch");
		const successes: { id: string; status: number }[] = [];
		const errors: { id: string; status: number; message?: string; error?: string }[] = [];
		batch.forEach((e: unknown, i: number) => {
			const id = e && typeof e === "object" && typeof (e as Json).id === "string" ? (e as Json).id : `#${i}`;
			const bad = validateEvent(e);
			if (bad) {
				errors.push({ id, status: 400, message: "Invalid request data", error: bad });
				return;
			}
			if (typeof mode === "object" && "partial207" in mode && i % 2 === 1 && !failedOnce.has(id)) {
				failedOnce.add(id);
				errors.push({ id, status: 500, message: "forced partial failure", error: "Internal Server Error" });
				return;
			}
			const o = e as Json;
			const ev: IngestionEvent = { id: o.id, type: o.type, timestamp: o.timestamp, body: mode === "v2" ? v2Body(o.type, o.body) : o.body, requestIndex: index };
			if (o.metadata !== undefined) ev.metadata = o.metadata;
			events.push(ev);
			out({ record: "event", ...ev });
			successes.push({ id, status: 201 });
		});
		rec.accepted = successes.length;
		return reply(207, { successes, errors });
	}

	const serve = (port: number) =>
		Bun.serve({ hostname: "127.0.0.1", port, idleTimeout: 60, maxRequestBodySize: 64 * 1024 * 1024, fetch: handle });

	let server: ReturnType<typeof Bun.serve> | undefined = mode === "down" ? undefined : serve(opts.port ?? 0);
	let port = server ? (server.port as number) : (opts.port ?? 0);
	if (!server) {
		// start "down": still reserve a concrete port number
		const tmp = serve(opts.port ?? 0);
		port = tmp.port as number;
		await tmp.stop(true);
	}

	const bringUp = async () => {
		if (server) return;
		const deadline = Date.now() + 3000;
		for (;;) {
			try {
				server = serve(port);
				return;
			} catch (e) {
				if (Date.now() > deadline) throw e;
				await Bun.sleep(25);
			}
		}
	};

	const r: Receiver = {
		get url() {
			return `http://127.0.0.1:${port}`;
		},
		get port() {
			return port;
		},
		get otlpUrl() {
			return `http://127.0.0.1:${port}/api/public/otel/v1/traces`;
		},
		get ingestionUrl() {
			return `http://127.0.0.1:${port}/api/public/ingestion`;
		},
		spans,
		events,
		requests,
		get mode() {
			return mode;
		},
		async setMode(m: ReceiverMode) {
			mode = m;
			failLeft = typeof m === "object" && "status" in m ? (m.times ?? Infinity) : Infinity;
			if (m === "down") {
				const s = server;
				server = undefined;
				if (s) await s.stop(true);
			} else {
				await bringUp();
			}
		},
		async reset() {
			spans.length = 0;
			events.length = 0;
			requests.length = 0;
			failedOnce.clear();
			await r.setMode("ok");
		},
		async close() {
			const s = server;
			server = undefined;
			if (s) await s.stop(true);
		},
		async waitFor(pred, timeoutMs = 10_000) {
			const deadline = Date.now() + timeoutMs;
			for (;;) {
				if (pred(spans, r)) return spans;
				if (Date.now() >= deadline)
					throw new Error(
						`receiver.waitFor timed out after ${timeoutMs} ms: ${spans.length} spans, ${events.length} events, ` +
							`${requests.length} requests (statuses ${requests.map(q => q.status).join(",")})`,
					);
				await Bun.sleep(20);
			}
		},
		spanCountsById() {
			const c: Record<string, number> = {};
			for (const s of spans) c[s.spanId] = (c[s.spanId] ?? 0) + 1;
			return c;
		},
		eventCountsById() {
			const c: Record<string, number> = {};
			for (const e of events) c[e.id] = (c[e.id] ?? 0) + 1;
			return c;
		},
		authHeader(pk = opts.publicKey ?? DEFAULT_PUBLIC_KEY, sk = opts.secretKey ?? DEFAULT_SECRET_KEY) {
			return basicAuth(pk, sk);
		},
	};
	return r;
}

function argValue(args: string[], name: string): string | undefined {
	const i = args.indexOf(name);
	return i >= 0 ? args[i + 1] : undefined;
}

if (import.meta.main) {
	const args = process.argv.slice(2);
	const rcv = await startReceiver({
		port: Number(argValue(args, "--port") ?? 0),
		outFile: argValue(args, "--out"),
		requestLog: argValue(args, "--request-log"),
		publicKey: argValue(args, "--public-key"),
		secretKey: argValue(args, "--secret-key"),
	});
	console.log(`listening ${rcv.url}`);
	const stop = () => {
		void rcv.close().finally(() => process.exit(0));
	};
	process.on("SIGINT", stop);
	process.on("SIGTERM", stop);
}
