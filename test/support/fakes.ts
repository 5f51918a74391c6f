/**
 * In-process fakes for driving langfuse.ts without a real host or network: a fake Langfuse `fetch`
 * (decodes what arrives, gzip or not), a fake pi/omp extension API with a context per session, and
 * the OpenCode plugin input. Used by test/robust.test.ts and test/fuzz.test.ts.
 */
import { gunzipSync } from "node:zlib";
import { decodeOtlp, type ReceivedSpan } from "./receiver.ts";

export const KEYS = { LANGFUSE_PUBLIC_KEY: "pk-lf-11111111-2222-3333-4444-555555555555", LANGFUSE_SECRET_KEY: "sk-lf-99999999-8888-7777-6666-555555555555" };

/** The body a fetch call carried, as text (the exporter may gzip). */
export function bodyText(init: RequestInit | undefined): { text: string; bytes: number } {
	const body = init?.body as unknown;
	if (typeof body === "string") return { text: body, bytes: Buffer.byteLength(body) };
	if (body instanceof Uint8Array || body instanceof ArrayBuffer) {
		const bytes = body instanceof ArrayBuffer ? new Uint8Array(body) : body;
		const gz = bytes[0] === 0x1f && bytes[1] === 0x8b;
		return { text: (gz ? gunzipSync(bytes) : Buffer.from(bytes)).toString("utf8"), bytes: bytes.byteLength };
	}
	return { text: String(body ?? ""), bytes: 0 };
}

/** A Langfuse that answers 200 to everything and keeps every OTLP span (decoded and validated like the receiver). */
export function fakeLangfuse() {
	const spans: ReceivedSpan[] = [];
	const requests: { url: string; bytes: number; auth: string; error?: string }[] = [];
	const fetch = async (url: string | URL, init?: RequestInit) => {
		const { text, bytes } = bodyText(init);
		const headers = new Headers(init?.headers);
		const request: (typeof requests)[number] = { url: String(url), bytes, auth: headers.get("authorization") ?? "" };
		requests.push(request);
		if (String(url).endsWith("/otel/v1/traces")) {
			let decoded: ReceivedSpan[] | string;
			try {
				decoded = decodeOtlp(JSON.parse(text), requests.length - 1);
			} catch (error) {
				decoded = String(error);
			}
			if (typeof decoded === "string") {
				request.error = decoded;
				return new Response(JSON.stringify({ error: decoded }), { status: 400 });
			}
			spans.push(...decoded);
		}
		return new Response("{}", { status: 200, headers: { "content-type": "application/json" } });
	};
	return { fetch, spans, requests };
}

export type Handler = (event: unknown, ctx: unknown) => unknown;

/** The part of pi's ExtensionAPI langfuse.ts uses: `on` and `registerCommand`. */
export function fakePi() {
	const handlers = new Map<string, Handler[]>();
	const pi = {
		on: (name: string, handler: Handler) => handlers.set(name, [...(handlers.get(name) ?? []), handler]),
		registerCommand: () => {},
	};
	/** Calls every handler of `name`; returns what they returned (a host awaits these). */
	const emit = (name: string, event: unknown, ctx: unknown): unknown[] => (handlers.get(name) ?? []).map(handler => handler(event, ctx));
	return { pi, handlers, emit };
}

/** An ExtensionContext for one session. */
export function piContext(sessionId: string) {
	return {
		hasUI: false,
		cwd: "/work/project",
		mode: "print",
		model: { id: "mock-model", provider: "mock", api: "openai-completions" },
		sessionManager: { getSessionId: () => sessionId, getSessionFile: () => `/sessions/${sessionId}.jsonl`, getHeader: () => ({}) },
		getContextUsage: () => ({ tokens: 1200, contextWindow: 128000, percent: 0.9 }),
		ui: { setStatus: () => {}, notify: () => {} },
	};
}

export const assistant = (text: string, extra: Record<string, unknown> = {}) => ({
	role: "assistant",
	content: [{ type: "text", text }],
	model: "mock-model",
	provider: "mock",
	usage: { input: 1000, output: 20, cacheRead: 200, cacheWrite: 0, totalTokens: 1220, cost: { total: 0.003 } },
	stopReason: "stop",
	...extra,
});

/**
 * One well-formed omp prompt: trace, turn, LLM call, one tool, answer. Returns what the hooks
 * returned at session_shutdown (the host awaits it). Four observations: agent, turn, generation, tool.
 */
export function piPrompt(emit: ReturnType<typeof fakePi>["emit"], ctx: unknown, prompt: string, toolCallId = "call_1", shutdown = true): unknown[] {
	emit("session_start", {}, ctx);
	emit("before_agent_start", { prompt }, ctx);
	emit("agent_start", {}, ctx);
	emit("turn_start", { turnIndex: 0 }, ctx);
	emit("before_provider_request", { payload: { model: "mock-model", messages: [{ role: "user", content: prompt }] } }, ctx);
	emit("message_update", {}, ctx);
	emit("message_end", { message: assistant("Calling ls", { stopReason: "toolUse" }) }, ctx);
	emit("tool_execution_start", { toolCallId, toolName: "bash", args: { command: "ls" } }, ctx);
	emit("tool_execution_end", { toolCallId, toolName: "bash", result: { content: [{ type: "text", text: "a.ts" }] }, isError: false }, ctx);
	emit("turn_end", { turnIndex: 0, message: assistant("Calling ls", { stopReason: "toolUse" }), toolResults: [{}] }, ctx);
	emit("agent_end", { messages: [assistant(`Answer to ${prompt}`)] }, ctx);
	return shutdown ? emit("session_shutdown", {}, ctx) : [];
}

/** What OpenCode passes the plugin factory. */
export const OPENCODE_INPUT = { client: {}, project: { id: "global" }, directory: "/tmp/proj", worktree: "/", serverUrl: new URL("http://localhost:4096"), $: () => {} };

/**
 * One well-formed OpenCode prompt through the hooks: session created, chat.message, an assistant
 * message with a text part and a bash tool, idle. Four observations: agent, turn, generation, tool.
 */
export function opencodePrompt(hooks: Record<string, (...args: any[]) => unknown>, sessionId: string, prompt: string, t0 = Date.now()): unknown[] {
	const results: unknown[] = [];
	const event = (type: string, properties: unknown) => results.push(hooks.event!({ event: { type, properties } }));
	event("session.created", { info: { id: sessionId, title: "New session - 2026-01-01T00:00:00.000Z", version: "1.18.33", time: { created: t0 } } });
	results.push(hooks["chat.message"]!({ sessionID: sessionId, agent: "build", messageID: `${sessionId}-u1` }, { message: { id: `${sessionId}-u1`, sessionID: sessionId }, parts: [{ type: "text", text: prompt }] }));
	const info = { id: `${sessionId}-a1`, sessionID: sessionId, role: "assistant", agent: "build", modelID: "mock-model", providerID: "mock", time: { created: t0 + 1 } };
	event("message.updated", { info });
	results.push(hooks["experimental.chat.system.transform"]!({ sessionID: sessionId }, { system: ["You are helpful."] }));
	results.push(hooks["experimental.chat.messages.transform"]!({}, { messages: [{ info: { role: "user", sessionID: sessionId }, parts: [{ type: "text", text: prompt }] }] }));
	results.push(hooks["chat.params"]!({ sessionID: sessionId, agent: "build" }, { temperature: 0.1, options: {} }));
	event("message.part.updated", { part: { id: `${sessionId}-p0`, type: "step-start", sessionID: sessionId, messageID: info.id } });
	event("message.part.updated", { part: { id: `${sessionId}-p1`, type: "text", text: `Answer to ${prompt}`, sessionID: sessionId, messageID: info.id } });
	const tool = { id: `${sessionId}-p2`, type: "tool", tool: "bash", callID: `${sessionId}-c1`, sessionID: sessionId, messageID: info.id };
	event("message.part.updated", { part: { ...tool, state: { status: "running", input: { command: "ls" }, time: { start: t0 + 2 } } } });
	event("message.part.updated", { part: { ...tool, state: { status: "completed", input: { command: "ls" }, output: "a.ts", metadata: { exit: 0 }, time: { start: t0 + 2, end: t0 + 3 } } } });
	event("message.part.updated", { part: { id: `${sessionId}-p3`, type: "step-finish", sessionID: sessionId, messageID: info.id, tokens: { input: 100, output: 10 }, cost: 0.001 } });
	event("message.updated", { info: { ...info, time: { created: t0 + 1, completed: t0 + 4 }, tokens: { input: 100, output: 10 }, finish: "stop" } });
	event("session.status", { sessionID: sessionId, status: { type: "idle" } });
	return results;
}
