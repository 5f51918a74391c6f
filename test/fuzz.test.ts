/**
 * Fuzz: thousands of randomized, malformed host calls through the ONE default export, as omp/pi
 * (a fake extension API) and as OpenCode (its hooks and bus events), then a well-formed session.
 *
 * Seeded: the seed is in the test name and printed on failure; `FUZZ_SEED=<n> bun test test/fuzz.test.ts`
 * replays a run exactly. `FUZZ_EVENTS=<n>` changes the number of calls per host (default 6,000 each).
 *
 * Checked: no throw or rejection reaches the host, no hook call costs over 50 ms, RSS stays bounded,
 * every request the fake Langfuse gets is valid OTLP (a bad value never makes a batch fail), and a
 * well-formed session afterwards arrives complete.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import langfuse, { type Internals } from "../langfuse.ts";
import { KEYS, OPENCODE_INPUT, fakeLangfuse, fakePi, opencodePrompt, piContext, piPrompt } from "./support/fakes.ts";

const { createRuntime } = (langfuse as unknown as { internals: Internals }).internals;

const SEED = Number.parseInt(process.env.FUZZ_SEED ?? "", 10) || Math.floor(Math.random() * 2 ** 31);
const EVENTS_PER_HOST = Number.parseInt(process.env.FUZZ_EVENTS ?? "", 10) || 6_000;
/** Per hook call, in CPU time (see measure()). */
const MAX_CALL_MS = 50;
const MAX_RSS_GROWTH_MB = 200;

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
function rng(seed: number) {
	let state = seed >>> 0;
	const next = () => {
		state = (state + 0x6d2b79f5) >>> 0;
		let t = state;
		t = Math.imul(t ^ (t >>> 15), t | 1);
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
	const int = (n: number) => Math.floor(next() * n);
	const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
	return { next, int, pick, chance: (p: number) => next() < p };
}
type Rng = ReturnType<typeof rng>;

const thrower = (): never => {
	throw new Error("fuzz: hostile getter");
};

/** Any value a confused or hostile host might pass. Depth-bounded. */
function junk(r: Rng, depth = 0): unknown {
	switch (r.int(depth > 2 ? 14 : 20)) {
		case 0:
			return undefined;
		case 1:
			return null;
		case 2:
			return r.pick([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1e300, -1e16, -1, 0, 2 ** 53, 1.5, Date.now()]);
		case 3:
			return r.pick(["", " ", "\u0000", "\ud800", "a\r\nb", "ses_1", "<script>", "NaN", "sk-lf-00000000-0000-0000-0000-000000000000"]);
		case 4:
			return "x".repeat(r.pick([1, 100, 10_000, 200_000]));
		case 5:
			return r.chance(0.5) ? true : false;
		case 6:
			return BigInt(r.int(1000));
		case 7:
			return Symbol("fuzz");
		case 8:
			return () => "fn";
		case 9:
			return new String("boxed".repeat(r.pick([1, 50_000])));
		case 10:
			return new Date(r.pick([Number.NaN, 0, 1e300]));
		case 11:
			return r.pick([new Error("boom"), new Uint8Array(16), new Map([["a", 1]]), new Set([1]), /re+/]);
		case 12:
			return Object.defineProperty({}, r.pick(["message", "payload", "properties", "info", "part", "type", "id"]), { get: thrower, enumerable: true });
		case 13:
			return new Proxy({}, { get: thrower, has: thrower, ownKeys: thrower, getOwnPropertyDescriptor: thrower });
		case 14: {
			const cyclic: Record<string, unknown> = { a: 1 };
			cyclic.self = cyclic;
			return cyclic;
		}
		case 15:
			return Array.from({ length: r.pick([0, 1, 3, 1000]) }, () => (depth > 1 ? r.int(9) : junk(r, depth + 1)));
		default: {
			const object: Record<string, unknown> = {};
			for (let i = r.int(6); i > 0; i--) object[r.pick(FIELD_NAMES)] = junk(r, depth + 1);
			return object;
		}
	}
}

const FIELD_NAMES = [
	"text", "prompt", "turnIndex", "payload", "message", "messages", "toolResults", "toolCallId", "toolName", "input", "args", "content",
	"result", "isError", "details", "intent", "willContinue", "attempt", "errorMessage", "success", "reason", "goal", "compactionEntry",
	"role", "model", "usage", "cost", "timestamp", "ttft", "stopReason", "id", "sessionID", "messageID", "type", "time", "tokens", "state",
	"status", "callID", "tool", "title", "parentID", "version", "info", "part", "properties", "error", "parts", "system", "agent",
] as const;

const PI_EVENTS = [
	"session_start", "input", "before_agent_start", "agent_start", "turn_start", "before_provider_request", "message_update", "message_end",
	"tool_call", "tool_execution_start", "tool_result", "tool_execution_end", "turn_end", "agent_end", "auto_retry_start", "auto_retry_end",
	"auto_compaction_start", "session_compact", "auto_compaction_end", "ttsr_triggered", "todo_reminder", "credential_disabled",
	"retry_fallback_applied", "goal_updated", "session_shutdown",
] as const;

const OC_EVENT_TYPES = [
	"message.part.delta", "message.part.updated", "message.updated", "session.created", "session.updated", "session.status", "session.idle",
	"session.error", "session.compacted", "session.deleted", "file.edited", "unknown.type", "__proto__", "constructor", "toString",
] as const;

/** Extra fields from a junk value (the generator itself must not trip over a throwing getter). */
function spreadable(value: unknown): object {
	try {
		return { ...(value as object) };
	} catch {
		return {};
	}
}

/** A time-like value: usually plausible, often not. */
const time = (r: Rng) => (r.chance(0.6) ? Date.now() + r.int(10_000) : junk(r, 2));
/** An id from a small pool (so sessions and messages meet again), or junk. */
const id = (r: Rng, prefix: string) => (r.chance(0.8) ? `${prefix}${r.int(40)}` : junk(r, 2));

/** A pi event: shaped like one (fields of the right names, values of any kind) or plain junk. */
function piEvent(r: Rng): unknown {
	if (r.chance(0.15)) return junk(r);
	const message = r.chance(0.5)
		? { role: r.pick(["assistant", "user", junk(r, 2)]), content: junk(r, 1), model: junk(r, 2), usage: r.chance(0.5) ? { input: junk(r, 2), output: time(r), totalTokens: junk(r, 2), cost: junk(r, 2) } : junk(r, 2), timestamp: time(r), ttft: junk(r, 2), stopReason: r.pick(["stop", "error", "aborted", junk(r, 2)]), errorMessage: junk(r, 2) }
		: junk(r, 1);
	return {
		message,
		messages: r.chance(0.5) ? [message, junk(r, 2)] : junk(r, 1),
		toolCallId: id(r, "call_"),
		toolName: r.chance(0.5) ? "bash" : junk(r, 2),
		input: junk(r, 1),
		args: junk(r, 1),
		content: junk(r, 1),
		result: junk(r, 1),
		isError: junk(r, 2),
		payload: r.chance(0.5) ? { model: junk(r, 2), messages: junk(r, 1), temperature: junk(r, 2) } : junk(r, 1),
		prompt: junk(r, 2),
		text: junk(r, 2),
		turnIndex: junk(r, 2),
		willContinue: r.chance(0.1) ? true : junk(r, 2),
		goal: { objective: junk(r, 2) },
		compactionEntry: junk(r, 1),
		...(r.chance(0.3) ? spreadable(junk(r, 1)) : {}),
	};
}

/** A pi ExtensionContext: mostly valid for a pool of sessions, sometimes broken in every way. */
function piCtx(r: Rng): unknown {
	switch (r.int(10)) {
		case 0:
			return junk(r);
		case 1:
			return { sessionManager: { getSessionId: () => junk(r, 2) } };
		case 2:
			return { get sessionManager() { return thrower(); } };
		case 3:
			return { ...piContext(`pi-${r.int(40)}`), getContextUsage: thrower, model: new Proxy({}, { get: thrower }) };
		case 4:
			return { sessionManager: { getSessionId: () => `long-${"z".repeat(r.pick([300, 100_000]))}`, getSessionFile: () => junk(r, 2), getHeader: thrower } };
		default:
			return piContext(`pi-${r.int(40)}`);
	}
}

/** An OpenCode hook call: [hook name, arguments]. */
function ocCall(r: Rng): [string, unknown[]] {
	const sessionID = id(r, "ses_");
	const messageID = id(r, "msg_");
	switch (r.int(8)) {
		case 0:
			return ["chat.message", [r.chance(0.8) ? { sessionID, agent: junk(r, 2), model: junk(r, 2), messageID } : junk(r), r.chance(0.8) ? { message: junk(r, 1), parts: r.chance(0.5) ? [{ type: "text", text: junk(r, 2) }] : junk(r, 1) } : junk(r)]];
		case 1:
			return ["chat.params", [{ sessionID, agent: r.pick(["build", "title", junk(r, 2)]) }, junk(r, 1)]];
		case 2:
			return ["experimental.chat.messages.transform", [junk(r, 2), r.chance(0.7) ? { messages: [{ info: { sessionID, role: "user" }, parts: junk(r, 1) }] } : junk(r)]];
		case 3:
			return ["experimental.chat.system.transform", [{ sessionID }, { system: junk(r, 1) }]];
		default: {
			const properties = r.chance(0.85)
				? {
						sessionID,
						messageID,
						info: r.chance(0.8) ? { id: r.chance(0.5) ? sessionID : messageID, sessionID, role: r.pick(["assistant", "user", junk(r, 2)]), time: { created: time(r), completed: r.chance(0.3) ? time(r) : junk(r, 2) }, tokens: junk(r, 1), cost: junk(r, 2), error: junk(r, 2), title: junk(r, 2), parentID: junk(r, 2), modelID: junk(r, 2) } : junk(r, 1),
						part: r.chance(0.8) ? { id: id(r, "prt_"), type: r.pick(["text", "reasoning", "tool", "step-start", "step-finish", "retry", junk(r, 2)]), sessionID, messageID, text: junk(r, 2), tool: junk(r, 2), callID: id(r, "call_"), state: { status: r.pick(["pending", "running", "completed", "error", junk(r, 2)]), input: junk(r, 1), output: junk(r, 1), error: junk(r, 2), metadata: junk(r, 1), time: { start: time(r), end: time(r) } }, tokens: junk(r, 1), cost: junk(r, 2) } : junk(r, 1),
						status: r.chance(0.7) ? { type: r.pick(["idle", "retry", "busy", junk(r, 2)]), message: junk(r, 2), attempt: junk(r, 2) } : junk(r, 1),
						error: junk(r, 1),
					}
				: junk(r);
			const event = r.chance(0.9) ? { type: r.pick(OC_EVENT_TYPES), properties } : junk(r);
			return ["event", [r.chance(0.95) ? { event } : junk(r)]];
		}
	}
}

/**
 * Runs one host call and measures it in CPU time (process.cpuUsage: user + system of this process),
 * not wall time: a loaded, shared machine slows the wall clock, not the work a call does, so the
 * 50 ms bound does not flake under load. Returns the call's result (sync throws propagate).
 */
function measure(call: () => unknown): { result: unknown; cpuMs: number } {
	const before = process.cpuUsage();
	const result = call();
	const spent = process.cpuUsage(before);
	return { result, cpuMs: (spent.user + spent.system) / 1000 };
}

describe("fuzz: malformed host calls never hurt the host", () => {
	const runtimeKey = Symbol.for("langfuse.ts/runtime");
	const holder = globalThis as Record<symbol, unknown>;
	const saved = holder[runtimeKey];
	const spoolDir = fs.mkdtempSync(path.join(os.tmpdir(), "langfuse-ts-fuzz-"));
	const fake = fakeLangfuse();
	const unhandled: unknown[] = [];
	const onUnhandled = (reason: unknown) => unhandled.push(reason);
	let logLines = 0;
	let runtime: ReturnType<typeof createRuntime>;

	beforeAll(() => {
		process.on("unhandledRejection", onUnhandled);
		runtime = createRuntime(
			{ ...KEYS, LANGFUSE_HOST: "http://langfuse.test", LANGFUSE_SPOOL_DIR: spoolDir, LANGFUSE_FLUSH_MS: "600000", LANGFUSE_MAX_QUEUE: "200" },
			{ fetch: fake.fetch as any, write: () => void logLines++, exitHook: false, backoffMs: () => 0, replaySpool: false },
		);
		// the default export takes the process runtime from here: the fuzz goes through the real entry point
		holder[runtimeKey] = runtime;
	});
	afterAll(() => {
		process.off("unhandledRejection", onUnhandled);
		runtime.exporter?.stop();
		holder[runtimeKey] = saved;
		fs.rmSync(spoolDir, { recursive: true, force: true });
	});

	test(`${EVENTS_PER_HOST} omp/pi and ${EVENTS_PER_HOST} OpenCode calls, then a well-formed session of each (seed ${SEED})`, async () => {
		try {
			const r = rng(SEED);
			const pi = fakePi();
			expect(langfuse(pi.pi)).toBeUndefined();
			const hooks = langfuse(OPENCODE_INPUT) as Record<string, (...args: unknown[]) => unknown>;
			expect(Object.keys(hooks).sort()).toEqual(["chat.message", "chat.params", "config", "dispose", "event", "experimental.chat.messages.transform", "experimental.chat.system.transform", "tool.definition"]);

			const rssBefore = process.memoryUsage().rss;
			const slow: string[] = [];
			const pending: Promise<unknown>[] = [];
			const check = (label: string, call: () => unknown) => {
				let measured: ReturnType<typeof measure>;
				try {
					measured = measure(call);
				} catch (error) {
					throw new Error(`${label} threw into the host: ${error}`);
				}
				if (measured.cpuMs > MAX_CALL_MS) slow.push(`${label}: ${measured.cpuMs.toFixed(1)} ms CPU`);
				const results = Array.isArray(measured.result) ? measured.result : [measured.result];
				for (const result of results) {
					if (result instanceof Promise) pending.push(result.then(value => expect(value).toBeUndefined(), error => Promise.reject(new Error(`${label} rejected: ${error}`))));
					else expect(result).toBeUndefined();
				}
			};

			for (let i = 0; i < EVENTS_PER_HOST; i++) {
				const name = r.chance(0.97) ? r.pick(PI_EVENTS) : r.pick(["", "agent_start ", "AGENT_END", "__proto__", "x".repeat(1000)]);
				const event = piEvent(r);
				const ctx = piCtx(r);
				check(`pi #${i} ${name}`, () => pi.emit(name, event, ctx));
				if (i % 500 === 499) await Promise.all(pending.splice(0));
			}
			for (let i = 0; i < EVENTS_PER_HOST; i++) {
				const [hook, args] = ocCall(r);
				check(`opencode #${i} ${hook}`, () => hooks[hook]!(...args));
				if (i % 500 === 499) await Promise.all(pending.splice(0));
			}
			await Promise.all(pending.splice(0));

			// a well-formed session of each host still arrives whole
			const before = fake.spans.length;
			await Promise.all(piPrompt(pi.emit, piContext("pi-well-formed"), "After the storm") as Promise<unknown>[]);
			opencodePrompt(hooks, "ses_well_formed", "After the storm too");
			await runtime.exporter!.flush();
			const arrived = fake.spans.slice(before);
			const of = (sessionId: string) =>
				[...new Set(arrived.filter(span => span.attributes["session.id"] === sessionId).map(span => `${span.attributes["langfuse.observation.type"]}:${span.name}`))].sort();
			expect(of("pi-well-formed")).toEqual(["agent:After the storm", "generation:mock-model", "span:turn 0", "tool:bash"]);
			expect(of("ses_well_formed")).toEqual(["agent:After the storm too", "generation:mock-model", "span:turn 0", "tool:bash"]);

			await (hooks.dispose!() as Promise<unknown>);
			await new Promise(resolve => setTimeout(resolve, 10));
			Bun.gc(true);
			const rssGrowthMb = (process.memoryUsage().rss - rssBefore) / 1024 / 1024;

			expect(slow).toEqual([]);
			expect(unhandled).toEqual([]);
			// every request was valid OTLP: no bad value ever made a strict server refuse a batch
			expect(fake.requests.filter(request => request.error).map(request => request.error)).toEqual([]);
			expect(fake.spans.length).toBeGreaterThan(100);
			expect(rssGrowthMb).toBeLessThan(MAX_RSS_GROWTH_MB);
		} catch (error) {
			console.error(`fuzz failed with seed ${SEED}: replay with FUZZ_SEED=${SEED} bun test test/fuzz.test.ts`);
			throw error;
		}
	}, 300_000);
});
