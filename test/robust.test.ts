/**
 * Issue 10 — bad input, garbage config, long-lived hosts: each test names the item it covers and
 * asserts what a user would notice (the lines printed, what arrives, what stays in memory).
 */
import { afterAll, afterEach, beforeEach, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import langfuse, { type Internals } from "../langfuse.ts";
import { decodeOtlp } from "./support/receiver.ts";
import { encodeSpan } from "./support/spans.ts";
import { KEYS, OPENCODE_INPUT, assistant, fakeLangfuse, fakePi, opencodePrompt, piContext, piPrompt } from "./support/fakes.ts";

const internals = (langfuse as unknown as { internals: Internals }).internals;
const { readConfig, createRuntime, attachPiHost, attachOpenCode, SessionRecorder, otlpBody } = internals;
type Runtime = ReturnType<typeof createRuntime>;

let tmp: string;
const runtimes: Runtime[] = [];
beforeEach(() => {
	tmp = fs.mkdtempSync(path.join(os.tmpdir(), "langfuse-ts-robust-"));
});
afterEach(() => {
	for (const runtime of runtimes.splice(0)) runtime.exporter?.stop();
	fs.rmSync(tmp, { recursive: true, force: true });
});

/** A fake pi host with langfuse.ts attached, its runtime sending through `fetch`. */
function tracedPi(fetch: (url: string, init: RequestInit) => Promise<Response>) {
	const { runtime } = runtimeWith({}, fetch);
	const host = fakePi();
	attachPiHost(host.pi, runtime);
	return { runtime, host };
}

function runtimeWith(env: Record<string, string>, fetch?: (url: string, init: RequestInit) => Promise<Response>) {
	const lines: string[] = [];
	const runtime = createRuntime(
		{ ...KEYS, LANGFUSE_HOST: "http://langfuse.test", LANGFUSE_SPOOL_DIR: path.join(tmp, "spool"), LANGFUSE_FLUSH_MS: "600000", ...env },
		{ fetch: fetch as any, write: (line: string) => lines.push(line), exitHook: false, backoffMs: () => 0, replaySpool: false },
	);
	runtimes.push(runtime);
	return { runtime, lines };
}

async function until(done: () => boolean, timeoutMs = 5000): Promise<void> {
	const give = Date.now() + timeoutMs;
	while (!done()) {
		if (Date.now() > give) throw new Error("condition not reached");
		await new Promise(resolve => setTimeout(resolve, 5));
	}
}

// ════════════════════════════════════════════════════════════════════════════════════════════════
describe("item 9 — config: one short line per bad value, naming the variable the user set", () => {
	const linesFor = (env: Record<string, string>) => runtimeWith(env).lines;

	test("a bad LANGFUSE_HOST prints one line, not two", () => {
		expect(linesFor({ LANGFUSE_HOST: "cloud.langfuse.com" })).toEqual(['[langfuse] tracing off: LANGFUSE_HOST="cloud.langfuse.com" is not an http(s) URL']);
	});

	test("LANGFUSE_BASE_URL and LANGFUSE_TRACING_ENVIRONMENT are reported under their own names", () => {
		const { LANGFUSE_HOST: _, ...noHost } = { LANGFUSE_HOST: "" };
		const base = createRuntime({ ...KEYS, ...noHost, LANGFUSE_BASE_URL: "nope", LANGFUSE_SPOOL_DIR: path.join(tmp, "s") }, { write: () => {}, exitHook: false });
		expect(base.config.disabledReason).toBe('LANGFUSE_BASE_URL="nope" is not an http(s) URL');
		const lines = linesFor({ LANGFUSE_TRACING_ENVIRONMENT: "Production" });
		expect(lines).toHaveLength(1);
		expect(lines[0]).toStartWith('[langfuse] LANGFUSE_TRACING_ENVIRONMENT="Production" breaks Langfuse\'s rule');
	});

	test("a 100 KB value is cut to 60 characters in its line", () => {
		const lines = linesFor({ LANGFUSE_SAMPLE_RATE: "7".repeat(100_000), LANGFUSE_TRACE_GROUPING: "x".repeat(100_000) });
		expect(lines).toHaveLength(2);
		expect(lines[0]).toBe(`[langfuse] LANGFUSE_SAMPLE_RATE="${"7".repeat(60)}…" is not a decimal number from 0 to 1; using 1`);
		for (const line of lines) expect(line.length).toBeLessThan(200);
	});

	test("numbers are decimal only: 0x10, 1e3, 12abc, Infinity are refused", () => {
		for (const bad of ["0x10", "1e3", " 12abc", "Infinity", "0b11", "1_000"]) {
			const { config, problems } = readConfig({ ...KEYS, LANGFUSE_MAX_QUEUE: bad });
			expect(config.maxQueue).toBe(500);
			expect(problems).toEqual([`LANGFUSE_MAX_QUEUE="${bad.trim()}" is not a decimal number from 1 to 100000; using 500`]);
		}
		expect(readConfig({ ...KEYS, LANGFUSE_MAX_QUEUE: "16" }).config.maxQueue).toBe(16);
		expect(readConfig({ ...KEYS, LANGFUSE_SAMPLE_RATE: ".25" }).config.sampleRate).toBe(0.25);
	});

	test("a relative LANGFUSE_SPOOL_DIR is refused: the default is used, one line", () => {
		const { config, problems } = readConfig({ ...KEYS, HOME: "/home/u", LANGFUSE_SPOOL_DIR: "spool" });
		expect(config.spoolDir).toBe("/home/u/.cache/langfuse-ts/spool");
		expect(problems).toEqual(['LANGFUSE_SPOOL_DIR="spool" is not an absolute path; using /home/u/.cache/langfuse-ts/spool']);
		expect(readConfig({ ...KEYS, OPENCODE_LANGFUSE_SPOOL_DIR: "./x" }).problems[0]).toStartWith('OPENCODE_LANGFUSE_SPOOL_DIR="./x" is not an absolute path');
	});

	test("LANGFUSE_REDACT_REGEX: nested quantifiers and patterns slow on a probe are refused, one line each; good ones work", () => {
		const { config, problems } = readConfig({ ...KEYS, LANGFUSE_REDACT_REGEX: "(a+)+$,(a|aa)+$,ticket-\\d{4,},(?i)acme_[a-z0-9]{8,},(x" });
		expect(config.redactPatterns).toEqual(["ticket-\\d{4,}", "(?i)acme_[a-z0-9]{8,}"]);
		expect(problems).toHaveLength(3);
		expect(problems[0]).toBe('LANGFUSE_REDACT_REGEX: skipping pattern "(a+)+$": a repeated group holds a repeat (like (a+)+), which can take minutes on one line');
		expect(problems[1]).toStartWith('LANGFUSE_REDACT_REGEX: skipping pattern "(a|aa)+$": too slow');
		expect(problems[2]).toStartWith('LANGFUSE_REDACT_REGEX: skipping pattern "(x": invalid');
		for (const nested of ["(\\w+\\s?)*$", "(x+x+)+y", "((ab)*c)+", "(?:a*){2,}"]) expect(readConfig({ ...KEYS, LANGFUSE_REDACT_REGEX: nested }).config.redactPatterns).toEqual([]);
		const { runtime, lines } = runtimeWith({ LANGFUSE_REDACT_REGEX: "(a+)+$,ticket-\\d{4,}" });
		expect(lines).toHaveLength(1);
		expect(runtime.redact("see ticket-123456 now")).toBe("see [REDACTED] now");
	});

	test("redaction never runs inside a hook the host awaits (agent_end, session_shutdown)", async () => {
		const fake = fakeLangfuse();
		const { runtime } = runtimeWith({}, fake.fetch);
		let inHook = false;
		let redactedInHook = 0;
		let redacted = 0;
		const options = (runtime.exporter as any).prepareOptions;
		const original = options.redact;
		options.redact = (text: string) => {
			redacted++;
			if (inHook) redactedInHook++;
			return original(text);
		};
		const host = fakePi();
		attachPiHost(host.pi, runtime);
		const ctx = piContext("s-await");
		const emit = (name: string, event: unknown) => {
			inHook = true;
			try {
				return host.emit(name, event, ctx);
			} finally {
				inHook = false;
			}
		};
		piPrompt(emit as any, ctx, "List the files", "call_1", false);
		const shutdown = emit("session_shutdown", {});
		await Promise.all(shutdown);
		await until(() => fake.spans.length >= 4);
		expect(redacted).toBeGreaterThan(0);
		expect(redactedInHook).toBe(0);
	});
});

// ════════════════════════════════════════════════════════════════════════════════════════════════
describe("items 2, 3 — every value is checked where it enters the record", () => {
	const info = (sessionId: unknown = "s1") => ({
		sessionId: sessionId as string,
		host: "omp",
		metadata: {},
		tags: [],
		grouping: "prompt" as const,
		exportMode: "full" as const,
		tracePrefix: "",
	});
	const recorderInto = (records: any[], lines: string[] = [], sessionId?: unknown) =>
		new SessionRecorder(record => records.push(record), info(sessionId), (line: string) => lines.push(line));
	/** What Langfuse would decode from these records, checked like the receiver does (400 → string). */
	const decode = (records: any[]) => decodeOtlp(JSON.parse(otlpBody(records.map(record => encodeSpan(record)))), 0);

	test("NaN, 1e300, -1e16 and Infinity times become valid times (start: now, end: the start); one debug line", () => {
		const records: any[] = [];
		const lines: string[] = [];
		const recorder = recorderInto(records, lines);
		const before = Date.now();
		recorder.startPrompt(Number.NaN, { input: "hi" });
		recorder.startTurn(1e300);
		recorder.startGeneration("llm", -1e16);
		recorder.markFirstToken("llm", Number.POSITIVE_INFINITY);
		recorder.endGeneration("llm", Number.NaN, { completionStartMs: 1e300, usage: { input: 10, bad: Number.NaN, big: 10n } as any });
		recorder.startTool("t", Number.NEGATIVE_INFINITY, { name: "bash" });
		recorder.endTool("t", 1e300);
		recorder.event(Number.NaN, { name: "retry" });
		recorder.endTurn(-1e16);
		recorder.endPrompt(Number.POSITIVE_INFINITY);
		const spans = decode(records);
		if (typeof spans === "string") throw new Error(spans);
		expect(spans).toHaveLength(records.length);
		for (const record of records) {
			expect(record.startMs).toBeGreaterThanOrEqual(before);
			expect(record.startMs).toBeLessThanOrEqual(Date.now());
			expect(record.endMs).toBeGreaterThanOrEqual(record.startMs);
			expect(record.endMs).toBeLessThanOrEqual(Date.now());
		}
		const generation = records.find(record => record.type === "generation");
		expect(generation.completionStartMs).toBeUndefined();
		expect(generation.usage).toEqual({ input: 10 });
		expect(lines).toHaveLength(1);
		expect(lines[0]).toContain("(time)");
	});

	test("non-string names and ids are replaced; oversized names cut to 1,000 characters", () => {
		const records: any[] = [];
		const lines: string[] = [];
		const recorder = recorderInto(records, lines);
		recorder.startPrompt(1000, { input: "x", traceId: "not a trace id" });
		recorder.startTool("t1", 1001, { name: 42 as any, id: { evil: true } as any });
		recorder.endTool("t1", 1002, { name: ["x"] as any });
		recorder.endTool("t2", 1003, { name: 7 as any }); // an end without a start
		recorder.startSpan("s", 1004, { name: "n".repeat(5000), id: "z".repeat(900) });
		recorder.endSpan("s", 1005, { level: "LOUD" as any, statusMessage: { no: 1 } as any });
		recorder.rename(12345 as any);
		recorder.endPrompt(1006);
		const spans = decode(records);
		if (typeof spans === "string") throw new Error(spans);
		for (const record of records) {
			expect(typeof record.name).toBe("string");
			expect(record.name.length).toBeLessThanOrEqual(1000);
			expect(record.id).toMatch(/^[0-9a-f]{16}$/);
			expect(record.traceId).toMatch(/^[0-9a-f]{32}$/);
		}
		expect(records.filter(record => record.type === "tool").map(record => record.name)).toEqual(["tool", "tool"]);
		const span = records.find(record => record.type === "span");
		expect(span.name.length).toBeLessThanOrEqual(1000);
		expect(span.level).toBeUndefined();
		expect(typeof span.statusMessage).toBe("string");
		expect(records.at(-1).trace.name).toBe("x");
		// one line per kind (name, id), however many bad values came
		expect(lines.map(line => line.match(/\((\w[\w ]*)\)/)?.[1])).toEqual(["id", "name"]);
	});

	test("omp: a message_end with a 1e300 / NaN / -1e16 timestamp loses nothing: every observation of the queue arrives", async () => {
		const fake = fakeLangfuse();
		const { runtime, host } = tracedPi(fake.fetch);
		const ctx = piContext("s-times");
		host.emit("agent_start", {}, ctx);
		for (let turn = 0; turn < 8; turn++) {
			host.emit("turn_start", { turnIndex: turn }, ctx);
			host.emit("before_provider_request", { payload: { model: "mock-model", messages: [] } }, ctx);
			const timestamp = [1e300, Number.NaN, -1e16, Number.POSITIVE_INFINITY][turn % 4];
			host.emit("message_end", { message: assistant(`turn ${turn}`, { timestamp, ttft: 5 }) }, ctx);
			host.emit("tool_execution_end", { toolCallId: `c${turn}`, toolName: { not: "a string" }, result: { content: [] } }, ctx);
			host.emit("turn_end", { turnIndex: turn }, ctx);
		}
		host.emit("agent_end", { messages: [assistant("done")] }, ctx);
		await Promise.all(host.emit("session_shutdown", {}, ctx));
		await until(() => new Set(fake.spans.map(span => span.spanId)).size >= 25);
		const spans = [...new Map(fake.spans.map(span => [span.spanId, span])).values()];
		expect(spans).toHaveLength(25); // the trace, 8 × (turn, LLM call, tool)
		expect(fake.requests.filter(request => request.error)).toEqual([]);
		expect(spans.filter(span => span.attributes["langfuse.observation.type"] === "tool").map(span => span.name)).toEqual(Array(8).fill("tool"));
	});

	test("a 5 MB session id is sent as fewer than 200 US-ASCII characters, distinct per session", () => {
		const records: any[] = [];
		const lines: string[] = [];
		const huge = "s".repeat(5_000_000);
		recorderInto(records, lines, huge).event(1, { name: "x" });
		recorderInto(records, [], `${"s".repeat(4_999_999)}t`).event(1, { name: "x" });
		recorderInto(records, [], "séance-1").event(1, { name: "x" });
		const [a, b, c] = [...new Set(records.map(record => record.sessionId as string))];
		expect(a.length).toBeLessThan(200);
		expect(a).not.toBe(b);
		expect(c).toMatch(/^[\x20-\x7e]{1,199}$/);
		expect(lines).toHaveLength(1);
		expect(lines[0].length).toBeLessThan(400);
	});
});

// ════════════════════════════════════════════════════════════════════════════════════════════════
describe("item 8 — hangs, oversize, hostile hosts", () => {
	test("a boxed string or an array where an event belongs is not spread per character", async () => {
		const fake = fakeLangfuse();
		const { runtime, host } = tracedPi(fake.fetch);
		const ctx = piContext("s-spread");
		host.emit("agent_start", {}, ctx);
		expect(host.emit("ttsr_triggered", new String("x".repeat(2_000_000)), ctx)).toEqual([undefined]);
		expect(host.emit("todo_reminder", Array.from({ length: 100_000 }, () => "y"), ctx)).toEqual([undefined]);
		expect(host.emit("credential_disabled", "z".repeat(2_000_000), ctx)).toEqual([undefined]);
		await Promise.all(host.emit("session_shutdown", {}, ctx));
		await until(() => fake.spans.length >= 4);
		const events = fake.spans.filter(span => ["ttsr triggered", "todo reminder", "credential disabled"].includes(span.name));
		expect(events).toHaveLength(3);
		for (const event of events) expect(event.attributes["langfuse.observation.metadata"]).toBeUndefined();
	});

	test("OpenCode: strings where events, properties, parts and hook arguments belong are ignored", async () => {
		const fake = fakeLangfuse();
		const { runtime } = runtimeWith({}, fake.fetch);
		const hooks = attachOpenCode(OPENCODE_INPUT, runtime) as Record<string, (...args: any[]) => unknown>;
		const junk = "x".repeat(2_000_000);
		const calls = [
			hooks.event!(junk),
			hooks.event!({ event: junk }),
			hooks.event!({ event: { type: "message.part.updated", properties: junk } }),
			hooks.event!({ event: { type: "session.updated", properties: { info: junk } } }),
			hooks.event!({ event: { type: "message.updated", properties: { info: new String(junk) } } }),
			hooks["chat.message"]!(junk, junk),
			hooks["chat.params"]!(junk, junk),
			hooks["experimental.chat.messages.transform"]!(junk, junk),
			hooks["experimental.chat.system.transform"]!(junk, { system: junk }),
		];
		expect(calls).toEqual(Array(calls.length).fill(undefined));
		opencodePrompt(hooks, "ses_ok", "List the files");
		await (hooks.dispose!() as Promise<unknown>);
		await until(() => fake.spans.length >= 4);
		expect(new Set(fake.spans.map(span => span.attributes["session.id"]))).toEqual(new Set(["ses_ok"]));
	});

	test("a 5 MB session id: no request exceeds 3.5 MB and the session arrives", async () => {
		const fake = fakeLangfuse();
		const { runtime, host } = tracedPi(fake.fetch);
		const sessionId = `s${"9".repeat(5_000_000)}`;
		await Promise.all(piPrompt(host.emit, piContext(sessionId), "List the files"));
		await until(() => fake.spans.length >= 4);
		expect(fake.requests.length).toBeGreaterThan(0);
		for (const request of fake.requests) {
			expect(request.error).toBeUndefined();
			expect(request.bytes).toBeLessThan(3_500_000);
		}
		const ids = new Set(fake.spans.map(span => span.attributes["session.id"] as string));
		expect(ids.size).toBe(1);
		expect([...ids][0]!.length).toBeLessThan(200);
	});

	test("the factory called with a host whose getters and `in` throw (a Proxy) throws nothing into the host", () => {
		const key = Symbol.for("langfuse.ts/runtime");
		const holder = globalThis as Record<symbol, unknown>;
		const saved = holder[key];
		holder[key] = createRuntime({}, { write: () => {}, exitHook: false });
		try {
			const trap = () => {
				throw new Error("hostile getter");
			};
			const hostile = new Proxy({}, { get: trap, has: trap, ownKeys: trap, getOwnPropertyDescriptor: trap, getPrototypeOf: trap });
			let result: unknown;
			expect(() => (result = langfuse(hostile))).not.toThrow();
			expect(result).toEqual({});
			const onOnly = new Proxy({ on: () => {} } as Record<string, unknown>, { has: trap });
			expect(() => langfuse(onOnly)).not.toThrow();
			// with tracing on, OpenCode's path reads the hostile input too: hooks still come back
			holder[key] = runtimeWith({}).runtime;
			const hooks = langfuse(hostile);
			expect(Object.keys(hooks).sort()).toEqual(["chat.message", "chat.params", "config", "dispose", "event", "experimental.chat.messages.transform", "experimental.chat.system.transform", "tool.definition"]);
			expect(hooks.event({ event: hostile })).toBeUndefined();
			expect(hooks["chat.message"](hostile, hostile)).toBeUndefined();
		} finally {
			holder[key] = saved;
		}
	});
});

// ════════════════════════════════════════════════════════════════════════════════════════════════
describe("item 7 — session end releases what the session kept; memory flat over thousands of sessions", () => {
	/** A Langfuse that keeps nothing: only counts, so the test's own bookkeeping does not grow. */
	const countingFetch = () => {
		const counter = { requests: 0 };
		const fetch = async () => {
			counter.requests++;
			return new Response("{}", { status: 200 });
		};
		return { counter, fetch };
	};
	const heapAfterGc = () => {
		Bun.gc(true);
		Bun.gc(true);
		return process.memoryUsage().heapUsed;
	};
	const MB = 1024 * 1024;

	test("2,000 omp sessions in one process: nothing of an ended session is kept", async () => {
		const { fetch } = countingFetch();
		const { runtime, host } = tracedPi(fetch);
		const run = async (from: number, to: number) => {
			for (let i = from; i < to; i++) {
				const prompt = `prompt ${i} ${"p".repeat(20_000)}`; // unique per session: a kept one would show
				await Promise.all(piPrompt(host.emit, piContext(`omp-session-${i}`), prompt));
			}
		};
		await run(0, 100);
		const baseline = heapAfterGc();
		await run(100, 2_000);
		await runtime.exporter!.flush();
		const grown = heapAfterGc() - baseline;
		expect(runtime.recorders.size).toBe(0);
		expect(runtime.owners.size).toBe(0);
		expect(runtime.sessionFiles.size).toBe(0);
		expect((runtime.exporter as any).listeners.size).toBe(0);
		expect(grown).toBeLessThan(8 * MB);
	}, 120_000);

	test("2,000 OpenCode sessions in one process: an idle session keeps no conversation, ended ones nothing", async () => {
		const { fetch } = countingFetch();
		const { runtime } = runtimeWith({}, fetch);
		const hooks = attachOpenCode(OPENCODE_INPUT, runtime) as Record<string, (...args: any[]) => unknown>;
		const baseline = heapAfterGc();
		for (let i = 0; i < 2_000; i++) {
			const id = `ses_${i}`;
			opencodePrompt(hooks, id, `prompt ${i}`);
			// OpenCode's title call: a transform with the whole conversation, and no chat.params for it
			hooks["experimental.chat.messages.transform"]!({}, { messages: [{ info: { role: "user", sessionID: id }, parts: [{ type: "text", text: `${i} ${"c".repeat(100_000)}` }] }] });
			hooks.event!({ event: { type: "session.idle", properties: { sessionID: id } } });
			if (i % 2) hooks.event!({ event: { type: "session.deleted", properties: { info: { id } } } });
			if (i % 100 === 99) await runtime.exporter!.flush();
		}
		await runtime.exporter!.flush();
		const grown = heapAfterGc() - baseline;
		expect(runtime.recorders.size).toBeLessThanOrEqual(500);
		expect(runtime.owners.size).toBeLessThanOrEqual(500);
		expect(grown).toBeLessThan(15 * MB);
	}, 120_000);
});

afterAll(() => {
	for (const runtime of runtimes.splice(0)) runtime.exporter?.stop();
});
