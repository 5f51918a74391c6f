/**
 * The OpenCode adapter, driven by event streams recorded from the real `opencode run`
 * (test/fixtures/opencode-*.jsonl: every hook call and bus event, `{t, hook, input, output}` per line),
 * replayed through the hooks langfuse.ts returns. What reaches the (fake) network is decoded from the
 * OTLP JSON bodies and asserted on.
 *
 * LANGFUSE_TS=<path> tests another copy of langfuse.ts (default: the one in the repository root).
 */
import { gunzipSync } from "node:zlib";
import { afterEach, describe, expect, setSystemTime, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeOtlp, type ReceivedSpan } from "./support/receiver.ts";
import { attr, type, json, io, meta, traceMeta, latest, sum, ms } from "./support/spans.ts";
import type { Internals } from "../langfuse.ts";

const LANGFUSE_TS = process.env.LANGFUSE_TS ?? new URL("../langfuse.ts", import.meta.url).pathname;
const mod = await import(LANGFUSE_TS);
const langfuse = mod.default;
const { createRuntime, attachOpenCode } = (langfuse as unknown as { internals: Internals }).internals;

type Json = Record<string, any>;
type Line = { t: number; hook: string; input?: any; output?: any };

const fixture = (name: string): Line[] =>
	readFileSync(new URL(`./fixtures/${name}`, import.meta.url), "utf8")
		.split("\n")
		.filter(line => line.trim())
		.map(line => JSON.parse(line));

/** The exporter sends in the background: poll (up to 2 s) instead of guessing a delay. */
async function until(condition: () => boolean): Promise<void> {
	for (let waited = 0; !condition() && waited < 2_000; waited += 10) await Bun.sleep(10);
}

const OPENCODE_INPUT = { client: {}, project: { id: "global" }, directory: "/tmp/proj", worktree: "/", serverUrl: new URL("http://localhost:4096"), $: () => {} };
const runtimes: any[] = [];
afterEach(() => {
	for (const runtime of runtimes.splice(0)) {
		runtime.exporter?.stop();
		rmSync(runtime.config.spoolDir, { recursive: true, force: true });
	}
	setSystemTime();
});

interface Harness {
	runtime: any;
	hooks: Record<string, any>;
	/** Every request body the exporter sent. */
	bodies: string[];
	/** Every line langfuse.ts wrote to stderr. */
	lines: string[];
	spans(): ReceivedSpan[];
	replay(lines: Line[], edit?: (line: Line) => Line): Promise<void>;
}

function harness(env: Record<string, string> = {}, fetchImpl?: (url: string, init: RequestInit) => Promise<Response>): Harness {
	const bodies: string[] = [];
	const lines: string[] = [];
	const fetch =
		fetchImpl ??
		(async (_url: string, init: RequestInit) => {
			const raw = Buffer.from(init.body as Uint8Array);
			bodies.push(((init.headers as Record<string, string>)["Content-Encoding"] === "gzip" ? gunzipSync(raw) : raw).toString("utf8"));
			return new Response("{}", { status: 200 });
		});
	const runtime = createRuntime(
		{
			LANGFUSE_PUBLIC_KEY: "pk-lf-test",
			LANGFUSE_SECRET_KEY: "sk-lf-secret-test",
			LANGFUSE_HOST: "http://langfuse.test",
			LANGFUSE_SPOOL_DIR: mkdtempSync(join(tmpdir(), "lf-oc-unit-")),
			LANGFUSE_FLUSH_MS: "600000",
			...env,
		},
		{ fetch, write: (line: string) => lines.push(line), exitHook: false },
	);
	runtimes.push(runtime);
	const hooks = attachOpenCode(OPENCODE_INPUT, runtime);
	return {
		runtime,
		hooks,
		bodies,
		lines,
		spans() {
			return bodies.flatMap((body, index) => {
				const decoded = decodeOtlp(JSON.parse(body), index);
				if (typeof decoded === "string") throw new Error(decoded);
				return decoded;
			});
		},
		async replay(recorded, edit = line => line) {
			// The recording's own clock: each line happens at its recorded time, so the times OpenCode
			// put into the events and the times langfuse.ts reads from Date.now() agree, as they did live.
			const created = recorded.find(line => line.hook === "event" && line.input.event.type === "session.created");
			const base = created ? created.input.event.properties.info.time.created - created.t : Date.now();
			for (const original of recorded) {
				const line = edit(original);
				setSystemTime(new Date(base + line.t));
				const hook = hooks[line.hook];
				if (typeof hook !== "function") continue;
				const result = line.hook === "event" ? hook(line.input) : line.hook === "dispose" ? hook() : hook(line.input, line.output);
				if (line.hook === "dispose") await result;
			}
			setSystemTime();
		},
	};
}

/** chat.params carries the provider's options, API key included: give it a recognisable one. */
const withApiKey = (key: string) => (line: Line) =>
	line.hook === "chat.params" ? { ...line, input: { ...line.input, provider: { ...line.input.provider, options: { ...line.input.provider.options, apiKey: key } } } } : line;

const events = (recorded: Line[]) => recorded.filter(line => line.hook === "event").map(line => line.input.event);

describe("replaying opencode-two-tools.jsonl (one prompt, two parallel bash calls, one failing)", () => {
	const recorded = fixture("opencode-two-tools.jsonl");
	const sessionId = events(recorded).find(event => event.type === "session.created").properties.info.id;
	const prompt = recorded.find(line => line.hook === "chat.message")!.output.parts[0].text;
	const assistants = () => {
		const final = new Map<string, Json>();
		for (const event of events(recorded)) {
			if (event.type === "message.updated" && event.properties.info.role === "assistant") final.set(event.properties.info.id, event.properties.info);
		}
		return [...final.values()];
	};

	test("one trace in OpenCode's session, named by the generated title, ending with the answer", async () => {
		const h = harness();
		await h.replay(recorded);
		const spans = latest(h.spans());
		expect(spans.length).toBeGreaterThan(0);
		expect(new Set(spans.map(span => span.traceId)).size).toBe(1);
		for (const span of spans) expect(attr(span, "session.id")).toBe(sessionId);
		const roots = spans.filter(span => !span.parentSpanId);
		expect(roots).toHaveLength(1);
		const root = roots[0]!;
		expect(type(root)).toBe("agent");
		expect(attr(root, "langfuse.trace.name")).toBe("Mock session title");
		expect(io(root, "langfuse.trace.input")).toBe(prompt);
		const last = assistants().at(-1)!;
		expect(io(root, "langfuse.trace.output")).toBe(io(spans.find(span => meta(span, "messageId") === last.id)!, "langfuse.observation.output"));
		expect(traceMeta(root, "host")).toBe("opencode");
		expect(traceMeta(root, "hostVersion")).toBe("1.18.33");
		expect(traceMeta(root, "agent")).toBe("build");
		expect(attr(root, "langfuse.trace.tags")).toEqual(["opencode"]);
		// The title came before the prompt's flush ran: its announcement (named by the prompt) and its end
		// were queued together, and a request carries only the latest version of a span.
		const versions = h.spans().filter(span => span.spanId === root.spanId);
		expect(versions).toHaveLength(1);
		expect(attr(versions[0]!, "langfuse.trace.name")).toBe("Mock session title");
		expect(attr(versions[0]!, "langfuse.trace.name")).not.toBe(prompt);
	});

	test("OPENCODE_LANGFUSE_TRACE_PREFIX is put before the title", async () => {
		const h = harness({ OPENCODE_LANGFUSE_TRACE_PREFIX: "[oc] " });
		await h.replay(recorded);
		const root = latest(h.spans()).find(span => !span.parentSpanId)!;
		expect(attr(root, "langfuse.trace.name")).toBe("[oc] Mock session title");
	});

	test("one generation per assistant message; the title call is none", async () => {
		const h = harness();
		await h.replay(recorded);
		const generations = latest(h.spans()).filter(span => type(span) === "generation");
		expect(recorded.filter(line => line.hook === "chat.params").map(line => line.input.agent)).toEqual(["title", "build", "build"]);
		expect(generations.map(span => meta(span, "messageId"))).toEqual(assistants().map(info => info.id));
		for (const span of generations) {
			expect(meta(span, "agent")).toBe("build");
			expect(attr(span, "langfuse.observation.model.name")).toBe("mock-model");
			expect(meta(span, "provider")).toBe("mock");
			expect(json(span, "langfuse.observation.model.parameters")).toEqual({ maxOutputTokens: 8192 });
		}
	});

	test("tokens and cost of each generation are OpenCode's, summed like OpenCode's session", async () => {
		const h = harness();
		await h.replay(recorded);
		const generations = latest(h.spans()).filter(span => type(span) === "generation");
		for (const info of assistants()) {
			const span = generations.find(candidate => meta(candidate, "messageId") === info.id)!;
			const usage = json(span, "langfuse.observation.usage_details");
			expect(usage).toEqual({ input: info.tokens.input, input_cache_read: info.tokens.cache.read, output: info.tokens.output, total: info.tokens.total });
			// issue 9: the config's model prices split OpenCode's total (3/15/0.3 $ per M in the fixture), adding up to it
			const cost = json(span, "langfuse.observation.cost_details");
			expect(cost).toEqual({
				input: Math.round(info.tokens.input * 3) / 1e6,
				input_cache_read: Math.round(info.tokens.cache.read * 0.3 * 1e6) / 1e12,
				output: Math.round(info.tokens.output * 15) / 1e6,
				total: info.cost,
			});
			expect(cost.input + cost.input_cache_read + cost.output).toBeCloseTo(info.cost, 12);
			expect(meta(span, "finish")).toBe(info.finish);
		}
		const steps = events(recorded)
			.filter(event => event.type === "message.part.updated" && event.properties.part.type === "step-finish")
			.map(event => event.properties.part);
		expect(sum(generations.map(span => json(span, "langfuse.observation.cost_details").total))).toBeCloseTo(sum(steps.map(step => step.cost)), 12);
		expect(sum(generations.map(span => json(span, "langfuse.observation.usage_details").input))).toBe(sum(steps.map(step => step.tokens.input)));
	});

	test("generation timing: starts with the request, completion start at the first streamed delta", async () => {
		const h = harness();
		await h.replay(recorded);
		const generations = latest(h.spans()).filter(span => type(span) === "generation");
		for (const span of generations) {
			const firstToken = Date.parse(io(span, "langfuse.observation.completion_start_time"));
			expect(firstToken).toBeGreaterThanOrEqual(ms(span.startNs));
			expect(firstToken).toBeLessThanOrEqual(ms(span.endNs));
		}
		const info = assistants()[0]!;
		expect(ms(generations[0]!.endNs)).toBe(info.time.completed);
	});

	test("generation input is the request (system + conversation), output the answer with its tool calls", async () => {
		const h = harness();
		await h.replay(recorded);
		const [first, second] = latest(h.spans()).filter(span => type(span) === "generation");
		// issue 9: ChatML {messages, tools}, the answer one assistant message with tool_calls
		const input = io(first!, "langfuse.observation.input");
		expect(input.messages[0].role).toBe("system");
		expect(input.messages[0].content).toContain("opencode");
		expect(input.messages.at(-1)).toEqual({ role: "user", content: prompt });
		expect(input.tools.map((tool: Json) => tool.function.name)).toContain("bash");
		const output = io(first!, "langfuse.observation.output");
		expect(output.tool_calls.map((call: Json) => JSON.parse(call.function.arguments).command)).toEqual(["echo one", "cat /nonexistent-file"]);
		// the second call saw both tool results, each a tool message answering its call
		const secondInput = io(second!, "langfuse.observation.input");
		const results = secondInput.messages.filter((message: Json) => message.role === "tool");
		expect(results.map((message: Json) => message.tool_call_id).sort()).toEqual(output.tool_calls.map((call: Json) => call.id).sort());
		expect(JSON.stringify(results)).toContain("No such file or directory");
	});

	test("one tool observation per tool call, under its LLM call's turn; the failing one is ERROR", async () => {
		const h = harness();
		await h.replay(recorded);
		const spans = latest(h.spans());
		const tools = spans.filter(span => type(span) === "tool");
		expect(tools.map(span => io(span, "langfuse.observation.input").command)).toEqual(["echo one", "cat /nonexistent-file"]);
		const [ok, failing] = tools;
		expect(io(ok!, "langfuse.observation.output")).toBe("one\n");
		// the tool's own metadata, without a second copy of the output
		expect(meta(ok!, "exit")).toBe(0);
		expect(meta(ok!, "title")).toBe("echo one");
		expect(meta(ok!, "output")).toBeUndefined();
		expect(attr(ok!, "langfuse.observation.level")).toBeUndefined();
		expect(attr(failing!, "langfuse.observation.level")).toBe("ERROR");
		expect(attr(failing!, "langfuse.observation.status_message")).toBe("exit code 1");
		expect(failing!.status.code).toBe(2);
		expect(io(failing!, "langfuse.observation.output")).toContain("No such file or directory");
		const parts = events(recorded)
			.filter(event => event.type === "message.part.updated" && event.properties.part.state?.status === "completed")
			.map(event => event.properties.part);
		for (const [index, span] of tools.entries()) {
			expect(ms(span.startNs)).toBe(parts[index].state.time.start);
			expect(ms(span.endNs)).toBe(parts[index].state.time.end);
			expect(meta(span, "callID")).toBe(parts[index].callID);
		}
		const turn = spans.find(span => span.spanId === ok!.parentSpanId)!;
		expect(turn.name).toBe("turn 0");
		expect(spans.find(span => type(span) === "generation")!.parentSpanId).toBe(turn.spanId);
	});

	test("the provider's API key from chat.params never reaches the network or the log", async () => {
		const h = harness({ LANGFUSE_DEBUG: "true" });
		await h.replay(recorded, withApiKey("sk-provider-SENTINEL-4711"));
		expect(h.bodies.length).toBeGreaterThan(0);
		expect(h.bodies.join("\n")).not.toContain("SENTINEL");
		expect(h.lines.join("\n")).not.toContain("SENTINEL");
		expect(h.bodies.join("\n")).not.toContain("sk-lf-secret-test");
	});

	test("session.idle flushes without waiting; dispose waits for the rest", async () => {
		const h = harness();
		const idle = recorded.findIndex(line => line.hook === "event" && line.input.event.type === "session.idle");
		await h.replay(recorded.slice(0, idle + 1));
		expect(h.bodies).toHaveLength(0); // nothing was sent inside the handler
		await until(() => h.bodies.length > 0);
		expect(h.spans().length).toBeGreaterThan(0); // ... but right after it
		const before = h.spans().length;
		await h.replay(recorded.slice(idle + 1));
		expect(h.spans().length).toBeGreaterThanOrEqual(before);
		expect(h.runtime.exporter.status.queued).toBe(0);
		expect(h.runtime.exporter.status.waitingBatches).toBe(0);
	});

	test("exported as the legacy ingestion API too", async () => {
		const h = harness({ LANGFUSE_TRANSPORT: "ingestion" });
		await h.replay(recorded);
		const batch = h.bodies.flatMap(body => JSON.parse(body).batch);
		expect(batch.filter((event: Json) => event.type === "generation-create")).toHaveLength(2 * 1);
		expect(batch.find((event: Json) => event.type === "trace-create").body.sessionId).toBe(sessionId);
	});
});

describe("replaying opencode-subagent.jsonl (a task tool spawns a child session)", () => {
	const recorded = fixture("opencode-subagent.jsonl");
	const created = events(recorded).filter(event => event.type === "session.created").map(event => event.properties.info);
	const parentId = created.find(info => !info.parentID).id;
	const childId = created.find(info => info.parentID).id;

	test("the child is its own session and trace, linked to the parent's trace and task tool call", async () => {
		const h = harness();
		await h.replay(recorded);
		const spans = latest(h.spans());
		const parentSpans = spans.filter(span => attr(span, "session.id") === parentId);
		const childSpans = spans.filter(span => attr(span, "session.id") === childId);
		expect(parentSpans.length + childSpans.length).toBe(spans.length);
		expect(new Set(parentSpans.map(span => span.traceId)).size).toBe(1);
		expect(new Set(childSpans.map(span => span.traceId)).size).toBe(1);
		const task = parentSpans.find(span => type(span) === "tool" && span.name === "task")!;
		expect(meta(task, "childSessionId")).toBe(childId);
		const childRoot = childSpans.find(span => !span.parentSpanId)!;
		expect(attr(childRoot, "langfuse.trace.name")).toBe("Echo hi in child (@general subagent)");
		expect(attr(childRoot, "langfuse.trace.tags")).toEqual(["opencode", "subagent"]);
		expect(traceMeta(childRoot, "parentSessionId")).toBe(parentId);
		expect(traceMeta(childRoot, "parentTraceId")).toBe(task.traceId);
		expect(traceMeta(childRoot, "parentObservationId")).toBe(task.spanId);
		expect(traceMeta(childRoot, "agent")).toBe("general");
		// the child ran inside the task call
		expect(ms(childRoot.startNs)).toBeGreaterThanOrEqual(ms(task.startNs));
		expect(ms(childRoot.endNs)).toBeLessThanOrEqual(ms(task.endNs));
		expect(childSpans.filter(span => type(span) === "generation").map(span => meta(span, "agent"))).toEqual(["general", "general"]);
		expect(childSpans.filter(span => type(span) === "tool").map(span => io(span, "langfuse.observation.input").command)).toEqual(["echo hi"]);
		expect(parentSpans.filter(span => type(span) === "generation")).toHaveLength(2);
	});

	test("sampling decides per parent session: a subagent follows its parent", async () => {
		// with the rate at 0 nothing is traced, children included
		const none = harness({ LANGFUSE_SAMPLE_RATE: "0" });
		expect(typeof none.hooks.event).toBe("function");
		await none.replay(recorded);
		expect(none.bodies).toHaveLength(0);
	});
});

// ── synthetic streams for what the recordings do not show ──

const SESSION = "ses_synthetic0001";
let clock = Date.now();
/** Synthetic time: every step moves OpenCode's clock and Date.now() together. */
const at = () => {
	clock += 10;
	setSystemTime(new Date(clock));
	return clock;
};
const event = (type: string, properties: Json) => ({ event: { id: `evt_${clock}`, type, properties } });
const sessionInfo = (extra: Json = {}) => ({ id: SESSION, title: "New session - 2026-01-01T00:00:00.000Z", version: "1.18.33", ...extra });
const assistant = (id: string, extra: Json = {}) => ({
	id,
	sessionID: SESSION,
	role: "assistant",
	agent: "build",
	mode: "build",
	modelID: "model-x",
	providerID: "prov-y",
	parentID: "msg_user",
	time: { created: clock },
	cost: 0,
	tokens: { input: 0, output: 0, reasoning: 0, cache: { read: 0, write: 0 } },
	...extra,
});
const params = (agent: string) => [
	{ sessionID: SESSION, agent, model: { id: "model-x", providerID: "prov-y" }, provider: { id: "prov-y", options: { apiKey: "sk-provider-SENTINEL" } } },
	{ temperature: 0.2, topP: 0.9, maxOutputTokens: 1000, options: { reasoningEffort: "high", apiKey: "sk-options-SENTINEL", headers: { Authorization: "x" } } },
];

/** Drives one prompt by hand: the helpers call hooks exactly as OpenCode would. */
function driver(h: Harness) {
	const e = (type: string, properties: Json) => h.hooks.event(event(type, properties));
	return {
		e,
		start(text = "do the thing") {
			e("session.created", { sessionID: SESSION, info: sessionInfo() });
			h.hooks["chat.message"]({ sessionID: SESSION, agent: "build" }, { message: { id: "msg_user", role: "user", sessionID: SESSION }, parts: [{ type: "text", text }] });
		},
		message(id: string, agent = "build") {
			e("message.updated", { sessionID: SESSION, info: assistant(id, { agent, time: { created: at() } }) });
			h.hooks["chat.params"](...params(agent));
			e("message.part.updated", { sessionID: SESSION, part: { id: `${id}-ss`, type: "step-start", messageID: id, sessionID: SESSION } });
		},
		finish(id: string, extra: Json = {}) {
			e("message.updated", { sessionID: SESSION, info: assistant(id, { time: { created: clock - 100, completed: at() }, finish: "stop", ...extra }) });
		},
		idle() {
			e("session.status", { sessionID: SESSION, status: { type: "idle" } });
			e("session.idle", { sessionID: SESSION });
		},
	};
}

describe("synthetic OpenCode streams", () => {
	test("an errored LLM call is an ERROR generation; session.error makes the trace ERROR", async () => {
		const h = harness();
		const d = driver(h);
		d.start();
		d.message("msg_a");
		d.finish("msg_a", { finish: undefined, error: { name: "APIError", data: { message: "Bad Request: model overloaded", statusCode: 400 } } });
		d.e("session.error", { sessionID: SESSION, error: { name: "APIError", data: { message: "Bad Request: model overloaded" } } });
		d.idle();
		await h.hooks.dispose();
		const spans = latest(h.spans());
		const generation = spans.find(span => type(span) === "generation")!;
		expect(attr(generation, "langfuse.observation.level")).toBe("ERROR");
		expect(attr(generation, "langfuse.observation.status_message")).toBe("Bad Request: model overloaded");
		const root = spans.find(span => !span.parentSpanId)!;
		expect(attr(root, "langfuse.observation.level")).toBe("ERROR");
		expect(root.status.code).toBe(2);
		expect(spans.find(span => type(span) === "event" && span.name === "session error")).toBeDefined();
	});

	test("a failed call OpenCode saves only after session.idle still lands in its trace", async () => {
		// recorded order for a provider 400: session.error, idle, then the errored message, idle again
		const h = harness();
		const d = driver(h);
		d.start();
		d.message("msg_a");
		const error = { name: "APIError", data: { message: "mock: bad request", statusCode: 400, isRetryable: false } };
		d.e("session.error", { sessionID: SESSION, error });
		d.idle();
		d.finish("msg_a", { finish: undefined, error });
		d.idle();
		await until(() => h.spans().some(span => type(span) === "generation"));
		const spans = latest(h.spans());
		expect(new Set(spans.map(span => span.traceId)).size).toBe(1);
		const generation = spans.find(span => type(span) === "generation")!;
		expect(attr(generation, "langfuse.observation.level")).toBe("ERROR");
		expect(attr(generation, "langfuse.observation.status_message")).toBe("mock: bad request");
		const root = spans.find(span => !span.parentSpanId)!;
		expect(attr(root, "langfuse.observation.level")).toBe("ERROR");
		expect(ms(root.endNs)).toBeGreaterThanOrEqual(ms(generation.endNs));
		await h.hooks.dispose();
	});

	test("idle with a call never saved: the next prompt (or dispose) still ends the trace", async () => {
		const h = harness();
		const d = driver(h);
		d.start("one");
		d.message("msg_a");
		d.idle();
		h.hooks["chat.message"]({ sessionID: SESSION }, { message: { id: "msg_user2", role: "user", sessionID: SESSION }, parts: [{ type: "text", text: "two" }] });
		d.idle();
		await h.hooks.dispose();
		const roots = latest(h.spans()).filter(span => !span.parentSpanId);
		expect(roots.map(root => io(root, "langfuse.trace.input"))).toEqual(["one", "two"]);
		expect(roots.every(root => ms(root.endNs) > 0)).toBe(true);
	});

	test("an aborted call is a WARNING, not an ERROR", async () => {
		const h = harness();
		const d = driver(h);
		d.start();
		d.message("msg_a");
		d.finish("msg_a", { finish: undefined, error: { name: "MessageAbortedError", data: { message: "Aborted" } } });
		d.e("session.error", { sessionID: SESSION, error: { name: "MessageAbortedError", data: { message: "Aborted" } } });
		d.idle();
		await h.hooks.dispose();
		const spans = latest(h.spans());
		expect(attr(spans.find(span => type(span) === "generation")!, "langfuse.observation.level")).toBe("WARNING");
		expect(attr(spans.find(span => !span.parentSpanId)!, "langfuse.observation.level")).toBe("WARNING");
	});

	test("reasoning, cache writes and reasoning tokens: kept in output and usage under Langfuse's keys", async () => {
		const h = harness();
		const d = driver(h);
		d.start();
		d.message("msg_a");
		const part = (id: string, partType: string, text: string) =>
			d.e("message.part.updated", { sessionID: SESSION, part: { id, type: partType, text, messageID: "msg_a", sessionID: SESSION } });
		part("p1", "reasoning", "");
		d.e("message.part.delta", { sessionID: SESSION, messageID: "msg_a", partID: "p1", field: "text", delta: "Let me think" });
		part("p1", "reasoning", "Let me think.");
		part("p2", "text", "The answer is 42.");
		d.finish("msg_a", { cost: 0.0125, tokens: { input: 100, output: 20, reasoning: 30, cache: { read: 400, write: 50 }, total: 600 } });
		d.idle();
		await h.hooks.dispose();
		const spans = latest(h.spans());
		const generation = spans.find(span => type(span) === "generation")!;
		// issue 9: one assistant message, reasoning as Langfuse's `thinking`
		expect(io(generation, "langfuse.observation.output")).toEqual({
			role: "assistant",
			content: "The answer is 42.",
			thinking: [{ type: "thinking", content: "Let me think." }],
		});
		expect(json(generation, "langfuse.observation.usage_details")).toEqual({ input: 100, input_cache_read: 400, input_cache_creation: 50, output: 20, output_reasoning: 30, total: 600 });
		expect(json(generation, "langfuse.observation.cost_details")).toEqual({ total: 0.0125 });
		expect(json(generation, "langfuse.observation.model.parameters")).toEqual({ temperature: 0.2, topP: 0.9, maxOutputTokens: 1000, reasoningEffort: "high" });
		expect(Date.parse(io(generation, "langfuse.observation.completion_start_time"))).toBeGreaterThan(0);
		expect(io(spans.find(span => !span.parentSpanId)!, "langfuse.trace.output")).toBe("The answer is 42.");
		expect(h.bodies.join()).not.toContain("SENTINEL");
	});

	test("usage falls back to step-finish parts when the message carries none", async () => {
		const h = harness();
		const d = driver(h);
		d.start();
		d.message("msg_a");
		d.e("message.part.updated", {
			sessionID: SESSION,
			part: { id: "sf", type: "step-finish", messageID: "msg_a", sessionID: SESSION, cost: 0.5, tokens: { input: 7, output: 3, reasoning: 0, cache: { read: 0, write: 0 } } },
		});
		d.finish("msg_a");
		d.idle();
		await h.hooks.dispose();
		const generation = latest(h.spans()).find(span => type(span) === "generation")!;
		expect(json(generation, "langfuse.observation.usage_details")).toEqual({ input: 7, output: 3, total: 10 });
		expect(json(generation, "langfuse.observation.cost_details")).toEqual({ total: 0.5 });
	});

	test("a tool OpenCode fails (status error) is ERROR with its message; a late re-save of an old part adds nothing", async () => {
		const h = harness();
		const d = driver(h);
		d.start();
		d.message("msg_a");
		const tool = (state: Json) =>
			d.e("message.part.updated", { sessionID: SESSION, part: { id: "prt_tool", type: "tool", tool: "read", callID: "call_1", messageID: "msg_a", sessionID: SESSION, state } });
		tool({ status: "pending", input: {}, raw: "" });
		tool({ status: "running", input: { filePath: "/nope" }, time: { start: at() } });
		tool({ status: "error", input: { filePath: "/nope" }, error: "File not found: /nope", time: { start: clock, end: at() } });
		d.finish("msg_a", { finish: "tool-calls" });
		// compaction prunes old tool outputs later: the same part, saved again
		tool({ status: "completed", input: { filePath: "/nope" }, output: "[pruned]", time: { start: clock, end: at(), compacted: clock } });
		d.e("message.updated", { sessionID: SESSION, info: assistant("msg_a", { time: { created: 1, completed: 2 }, finish: "tool-calls" }) });
		d.idle();
		await h.hooks.dispose();
		const spans = latest(h.spans());
		const tools = spans.filter(span => type(span) === "tool");
		expect(tools).toHaveLength(1);
		expect(tools[0]!.name).toBe("read");
		expect(attr(tools[0]!, "langfuse.observation.level")).toBe("ERROR");
		expect(attr(tools[0]!, "langfuse.observation.status_message")).toBe("File not found: /nope");
		expect(io(tools[0]!, "langfuse.observation.input")).toEqual({ filePath: "/nope" });
		expect(spans.filter(span => type(span) === "generation")).toHaveLength(1);
	});

	test("two prompts in one session: two traces, both named by the title; retries are WARNING events", async () => {
		const h = harness();
		const d = driver(h);
		d.start("first prompt");
		d.e("session.updated", { sessionID: SESSION, info: sessionInfo({ title: "Fix the parser" }) });
		d.message("msg_a");
		d.e("session.status", { sessionID: SESSION, status: { type: "retry", attempt: 1, message: "rate limited", next: clock + 1000 } });
		d.finish("msg_a");
		d.idle();
		h.hooks["chat.message"]({ sessionID: SESSION }, { message: { id: "msg_user2", role: "user", sessionID: SESSION }, parts: [{ type: "text", text: "second prompt" }] });
		d.message("msg_b");
		d.finish("msg_b");
		d.idle();
		await h.hooks.dispose();
		const roots = latest(h.spans()).filter(span => !span.parentSpanId);
		expect(roots).toHaveLength(2);
		expect(roots.map(root => attr(root, "langfuse.trace.name"))).toEqual(["Fix the parser", "Fix the parser"]);
		expect(roots.map(root => io(root, "langfuse.trace.input"))).toEqual(["first prompt", "second prompt"]);
		const retry = latest(h.spans()).find(span => type(span) === "event" && span.name === "retry")!;
		expect(attr(retry, "langfuse.observation.level")).toBe("WARNING");
		expect(attr(retry, "langfuse.observation.status_message")).toBe("rate limited");
	});

	test("a title that arrives after a quick answer still names that trace (and the next ones)", async () => {
		const h = harness();
		const d = driver(h);
		d.start("hi");
		d.message("msg_a");
		d.finish("msg_a");
		d.idle();
		await until(() => h.bodies.length > 0);
		const ended = latest(h.spans()).find(span => !span.parentSpanId)!;
		expect(attr(ended, "langfuse.trace.name")).toBe("hi");
		d.e("session.updated", { sessionID: SESSION, info: sessionInfo({ title: "Greeting" }) });
		h.hooks["chat.message"]({ sessionID: SESSION }, { message: { id: "msg_user2", role: "user", sessionID: SESSION }, parts: [{ type: "text", text: "again" }] });
		d.idle();
		await h.hooks.dispose();
		const roots = latest(h.spans()).filter(span => !span.parentSpanId);
		expect(roots.map(root => attr(root, "langfuse.trace.name"))).toEqual(["Greeting", "Greeting"]);
		const renamed = roots.find(root => root.spanId === ended.spanId)!;
		expect(renamed.traceId).toBe(ended.traceId);
		expect(renamed.endNs).toBe(ended.endNs);
		expect(io(renamed, "langfuse.trace.output")).toBe(io(ended, "langfuse.trace.output"));
	});

	test("a message sent while the agent is busy joins the running trace as an event", async () => {
		const h = harness();
		const d = driver(h);
		d.start("first");
		d.message("msg_a");
		h.hooks["chat.message"]({ sessionID: SESSION }, { message: { id: "msg_user2", role: "user", sessionID: SESSION }, parts: [{ type: "text", text: "also this" }] });
		d.finish("msg_a", { cost: 0.01, tokens: { input: 5, output: 5, reasoning: 0, cache: { read: 0, write: 0 } } });
		d.message("msg_b");
		d.finish("msg_b", { cost: 0.02, tokens: { input: 6, output: 6, reasoning: 0, cache: { read: 0, write: 0 } } });
		d.idle();
		await h.hooks.dispose();
		const spans = latest(h.spans());
		expect(spans.filter(span => !span.parentSpanId)).toHaveLength(1);
		const generations = spans.filter(span => type(span) === "generation");
		expect(generations.map(span => attr(span, "langfuse.observation.level"))).toEqual([undefined, undefined]);
		expect(sum(generations.map(span => json(span, "langfuse.observation.cost_details").total))).toBeCloseTo(0.03, 12);
		const message = spans.find(span => type(span) === "event" && span.name === "user message")!;
		expect(io(message, "langfuse.observation.input")).toBe("also this");
	});

	test("LANGFUSE_TRACE_GROUPING=session: every prompt of the session in one trace", async () => {
		const h = harness({ LANGFUSE_TRACE_GROUPING: "session" });
		const d = driver(h);
		d.start("first prompt");
		d.message("msg_a");
		d.finish("msg_a");
		d.idle();
		h.hooks["chat.message"]({ sessionID: SESSION }, { message: { id: "msg_user2", role: "user", sessionID: SESSION }, parts: [{ type: "text", text: "second prompt" }] });
		d.message("msg_b");
		d.finish("msg_b");
		d.idle();
		await h.hooks.dispose();
		const spans = latest(h.spans());
		expect(new Set(spans.map(span => span.traceId)).size).toBe(1);
		expect(spans.filter(span => type(span) === "chain").map(span => io(span, "langfuse.observation.input"))).toEqual(["first prompt", "second prompt"]);
		expect(spans.filter(span => type(span) === "generation")).toHaveLength(2);
	});

	test("metadata_only: structure, usage and cost, no prompt or tool content", async () => {
		const h = harness({ OPENCODE_LANGFUSE_EXPORT_MODE: "metadata_only" });
		await h.replay(fixture("opencode-two-tools.jsonl"));
		const spans = latest(h.spans());
		expect(spans.filter(span => type(span) === "generation")).toHaveLength(2);
		expect(h.bodies.join()).not.toContain("Run two commands");
		expect(h.bodies.join()).not.toContain("No such file or directory");
		expect(attr(spans.find(span => !span.parentSpanId)!, "langfuse.trace.name")).toBe("Mock session title");
	});

	test("a prompt still running at dispose is closed and sent within the budget", async () => {
		const h = harness();
		const d = driver(h);
		d.start();
		d.message("msg_a");
		await h.hooks.dispose();
		const spans = latest(h.spans());
		expect(spans.find(span => !span.parentSpanId)).toBeDefined();
		expect(attr(spans.find(span => type(span) === "generation")!, "langfuse.observation.level")).toBe("WARNING");
	});
});

describe("never in OpenCode's way", () => {
	test("the module has exactly one export, a function (OpenCode calls every export as a plugin)", () => {
		expect(Object.keys(mod)).toEqual(["default"]);
		expect(typeof langfuse).toBe("function");
	});

	test("the default export always gives OpenCode a hooks object", () => {
		const key = Symbol.for("langfuse.ts/runtime");
		const holder = globalThis as Record<symbol, unknown>;
		const before = holder[key];
		try {
			for (const input of [OPENCODE_INPUT, {}, null, undefined, { client: null }]) {
				const hooks = langfuse(input);
				expect(hooks).toBeObject();
				expect(hooks).not.toBeNull();
			}
		} finally {
			// the process-wide runtime this created (from the test's environment) must not leak into other tests
			const created = holder[key] as any;
			if (created !== before) {
				created?.exporter?.stop();
				holder[key] = before;
			}
		}
	});

	test("disabled, unconfigured: {} and one line; sampled out: hooks that send nothing", async () => {
		for (const env of [{ OPENCODE_LANGFUSE_ENABLED: "false" }, { LANGFUSE_PUBLIC_KEY: "", LANGFUSE_SECRET_KEY: "" }]) {
			const lines: string[] = [];
			const runtime = createRuntime({ LANGFUSE_PUBLIC_KEY: "pk-lf-x", LANGFUSE_SECRET_KEY: "sk-lf-x", ...env }, { write: (line: string) => lines.push(line), exitHook: false });
			expect(attachOpenCode(OPENCODE_INPUT, runtime)).toEqual({});
			expect(lines).toHaveLength(1);
			expect(lines[0]).toStartWith("[langfuse] tracing off:");
		}
		const h = harness({ LANGFUSE_SAMPLE_RATE: "0" });
		await h.replay(fixture("opencode-two-tools.jsonl"));
		expect(h.bodies).toHaveLength(0);
	});

	test("no hook throws, synchronously or not, whatever OpenCode passes", async () => {
		const h = harness();
		const hostile = new Proxy(
			{},
			{
				get() {
					throw new Error("boom from a getter");
				},
			},
		);
		const inputs = [undefined, null, 0, "x", [], {}, hostile, { event: hostile }, { event: { type: "session.idle", properties: hostile } }, { event: { type: "message.part.delta", properties: null } }];
		for (const [name, hook] of Object.entries(h.hooks)) {
			for (const input of inputs) {
				for (const output of [undefined, null, {}, hostile]) {
					let result: unknown;
					expect(() => (result = hook(input, output))).not.toThrow();
					await result; // an async rejection would throw here
				}
			}
			expect(name).toBeString();
		}
		for (const type of ["session.created", "session.updated", "message.updated", "message.part.updated", "session.status", "session.idle", "session.error", "session.deleted", "session.compacted"]) {
			expect(() => h.hooks.event({ event: { type, properties: hostile } })).not.toThrow();
			expect(() => h.hooks.event({ event: { type, properties: { sessionID: SESSION, info: hostile, part: hostile, status: hostile } } })).not.toThrow();
		}
		expect(h.lines.some(line => line.includes("internal error"))).toBe(true);
	});

	test("the hooks OpenCode awaits inline return at once and touch no network", () => {
		let calls = 0;
		const h = harness({}, async () => {
			calls++;
			return new Response("{}");
		});
		const d = driver(h);
		d.start();
		const inline = Object.keys(h.hooks).filter(name => name !== "event" && name !== "dispose");
		expect(inline.sort()).toEqual(["chat.message", "chat.params", "config", "experimental.chat.messages.transform", "experimental.chat.system.transform", "tool.definition"]);
		for (const name of inline) {
			const result = h.hooks[name]({ sessionID: SESSION, agent: "build", callID: "c1", tool: "bash" }, { args: {}, messages: [], system: [], parts: [] });
			expect(result).toBeUndefined();
		}
		expect(h.hooks.event(event("session.idle", { sessionID: SESSION }))).toBeUndefined();
		expect(calls).toBe(0);
	});

	test("dispose is bounded when Langfuse hangs", async () => {
		const h = harness({}, (_url, init) => new Promise((_resolve, reject) => init.signal?.addEventListener("abort", () => reject(new Error("aborted")))));
		await h.replay(fixture("opencode-two-tools.jsonl").filter(line => line.hook !== "dispose"));
		const started = Date.now();
		await h.hooks.dispose();
		expect(Date.now() - started).toBeLessThan(2_000);
	});

	test("two copies of the plugin in one process trace each session once", async () => {
		const h = harness();
		const second = attachOpenCode(OPENCODE_INPUT, h.runtime);
		const recorded = fixture("opencode-two-tools.jsonl");
		for (const line of recorded) {
			for (const hooks of [h.hooks, second]) {
				const hook = hooks[line.hook];
				if (typeof hook !== "function") continue;
				const result = line.hook === "event" ? hook(line.input) : line.hook === "dispose" ? hook() : hook(line.input, line.output);
				if (line.hook === "dispose") await result;
			}
		}
		const counts = new Map<string, number>();
		for (const span of h.spans()) counts.set(span.spanId, (counts.get(span.spanId) ?? 0) + 1);
		const roots = latest(h.spans()).filter(span => !span.parentSpanId);
		expect(roots).toHaveLength(1);
		expect(latest(h.spans()).filter(span => type(span) === "generation")).toHaveLength(2);
		for (const [id, count] of counts) if (id !== roots[0]!.spanId) expect(count).toBe(1);
	});
});
