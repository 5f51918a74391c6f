/**
 * The real `opencode run`, headless and offline, with langfuse.ts in `.opencode/plugin/`, against the
 * scripted mock LLM and a local Langfuse-compatible receiver: what an OpenCode user's session sends,
 * and proof that a disabled, misconfigured or unreachable Langfuse changes nothing for OpenCode.
 *
 * LANGFUSE_TS=<path> tests another copy of langfuse.ts (default: the one in the repository root).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runOmp, runOpencode, type OpencodeRunResult, type OpencodeSession } from "./support/hosts.ts";
import { startMockLlm, type MockLlm } from "./support/mock-llm.ts";
import { startReceiver, type ReceivedSpan, type Receiver } from "./support/receiver.ts";
import { attr, type, json, io, meta, traceMeta, latest, sum, ms } from "./support/spans.ts";

const LANGFUSE_TS = process.env.LANGFUSE_TS ?? new URL("../langfuse.ts", import.meta.url).pathname;
const TWO_TOOLS = "Run two commands: RUN<<echo one>> RUN<<cat /nonexistent-file>>";
/** OpenCode's own way for a tool call to fail: a permission rule denies the second command. */
const CONFIG = {
	permission: { bash: { "*": "allow", "cat /nonexistent*": "deny" }, read: "allow", edit: "allow", external_directory: "allow" },
};

let mock: MockLlm;
let receiver: Receiver;
beforeAll(async () => {
	mock = await startMockLlm();
	receiver = await startReceiver();
});
const spoolDirs: string[] = [];
afterAll(async () => {
	await mock.close();
	await receiver.close();
	for (const dir of spoolDirs) rmSync(dir, { recursive: true, force: true });
});

function spoolDir(): string {
	const dir = mkdtempSync(join(tmpdir(), "lf-oc-spool-"));
	spoolDirs.push(dir);
	return dir;
}

function tracingEnv(extra: Record<string, string> = {}) {
	return {
		LANGFUSE_PUBLIC_KEY: "pk-lf-test",
		LANGFUSE_SECRET_KEY: "sk-lf-test",
		LANGFUSE_HOST: receiver.url,
		LANGFUSE_SPOOL_DIR: spoolDir(),
		...extra,
	};
}

describe("opencode: a real session becomes one clean trace", () => {
	let result: OpencodeRunResult;
	let session: OpencodeSession;
	let spans: ReceivedSpan[];

	beforeAll(async () => {
		await receiver.reset();
		mock.reset();
		result = await runOpencode({ prompt: TWO_TOOLS, mockUrl: mock.url, pluginFile: LANGFUSE_TS, config: CONFIG, env: tracingEnv(), timeoutMs: 60_000 });
		session = result.sessions.find(candidate => candidate.id === result.sessionId)!;
		// dispose awaited the final flush, so everything is here when the process has exited
		spans = latest(receiver.spans.filter(span => attr(span, "session.id") === result.sessionId));
		console.log(`opencode run with tracing: ${result.ms} ms`);
	}, 90_000);
	afterAll(() => result?.cleanup());

	test("OpenCode itself is unaffected", () => {
		expect(result.code).toBe(0);
		expect(result.stdout).toContain("DONE: 2 commands");
		expect(result.stderr).not.toContain("[langfuse] internal error");
	});

	test("exactly one trace, in OpenCode's session, named by OpenCode's generated title", () => {
		expect(result.sessionId).toStartWith("ses_");
		expect(receiver.spans.every(span => attr(span, "session.id") === result.sessionId)).toBe(true);
		expect(new Set(spans.map(span => span.traceId)).size).toBe(1);
		const roots = spans.filter(span => !span.parentSpanId);
		expect(roots).toHaveLength(1);
		const root = roots[0]!;
		expect(session.title).toBe("Mock session title");
		expect(attr(root, "langfuse.trace.name")).toBe(session.title);
		expect(io(root, "langfuse.trace.input")).toBe(TWO_TOOLS);
		expect(io(root, "langfuse.trace.output")).toBe("DONE: 2 commands");
		expect(traceMeta(root, "host")).toBe("opencode");
		expect(traceMeta(root, "hostVersion")).toMatch(/^\d+\.\d+\.\d+/);
		expect(attr(root, "langfuse.trace.tags")).toContain("opencode");
	});

	test("one generation per LLM call of the build agent; the title call is not one", () => {
		const generations = spans.filter(span => type(span) === "generation");
		const assistants = session.messages.filter(message => message.role === "assistant");
		expect(mock.requests.some(request => request.kind === "title")).toBe(true);
		expect(mock.modelCalls()).toHaveLength(3);
		expect(generations).toHaveLength(3);
		expect(assistants).toHaveLength(3);
		expect(generations.map(span => meta(span, "messageId")).sort()).toEqual(assistants.map(message => message.id).sort());
		for (const span of generations) {
			expect(meta(span, "agent")).toBe("build");
			expect(attr(span, "langfuse.observation.model.name")).toBe("mock-model");
			expect(meta(span, "provider")).toBe("mock");
		}
	});

	test("one tool observation per tool call; the denied one is ERROR", () => {
		const tools = spans.filter(span => type(span) === "tool");
		expect(tools.map(tool => tool.name)).toEqual(["bash", "bash"]);
		const [ok, failing] = [...tools].sort((a, b) => ms(a.startNs) - ms(b.startNs));
		expect(io(ok!, "langfuse.observation.input")).toEqual({ command: "echo one" });
		expect(io(ok!, "langfuse.observation.output")).toBe("one\n");
		expect(attr(ok!, "langfuse.observation.level")).toBeUndefined();
		expect(io(failing!, "langfuse.observation.input")).toEqual({ command: "cat /nonexistent-file" });
		expect(attr(failing!, "langfuse.observation.level")).toBe("ERROR");
		expect(String(attr(failing!, "langfuse.observation.status_message"))).toContain("prevents you from using");
		expect(failing!.status.code).toBe(2);
		for (const tool of tools) expect(ms(tool.endNs)).toBeGreaterThanOrEqual(ms(tool.startNs));
		const turns = spans.filter(span => span.name.startsWith("turn"));
		expect(turns).toHaveLength(3);
		for (const child of spans.filter(span => type(span) === "generation" || type(span) === "tool")) {
			expect(turns.map(turn => turn.spanId)).toContain(child.parentSpanId!);
		}
	});

	test("token and cost sums equal OpenCode's own session record", () => {
		const generations = spans.filter(span => type(span) === "generation");
		const usage = generations.map(span => json(span, "langfuse.observation.usage_details"));
		const cost = generations.map(span => json(span, "langfuse.observation.cost_details"));
		expect(session.tokens.input).toBeGreaterThan(0);
		expect(session.tokens.cacheRead).toBeGreaterThan(0);
		expect(sum(usage.map(u => u.input ?? 0))).toBe(session.tokens.input);
		expect(sum(usage.map(u => u.output ?? 0))).toBe(session.tokens.output);
		expect(sum(usage.map(u => u.output_reasoning ?? 0))).toBe(session.tokens.reasoning);
		expect(sum(usage.map(u => u.input_cache_read ?? 0))).toBe(session.tokens.cacheRead);
		expect(sum(usage.map(u => u.input_cache_creation ?? 0))).toBe(session.tokens.cacheWrite);
		expect(sum(usage.map(u => u.total ?? 0))).toBe(
			session.tokens.input + session.tokens.output + session.tokens.reasoning + session.tokens.cacheRead + session.tokens.cacheWrite,
		);
		expect(session.cost).toBeGreaterThan(0);
		expect(sum(cost.map(c => c.total ?? 0))).toBeCloseTo(session.cost, 12);
	});

	test("generations carry the request, the answer and the time to first token", () => {
		const generations = spans.filter(span => type(span) === "generation").sort((a, b) => ms(a.startNs) - ms(b.startNs));
		const first = generations[0]!;
		const input = String(attr(first, "langfuse.observation.input"));
		expect(input).toContain('"role":"system"');
		expect(input).toContain("RUN<<echo one>>");
		expect(String(attr(first, "langfuse.observation.output"))).toContain("echo one");
		expect(io(generations[2]!, "langfuse.observation.output")).toBe("DONE: 2 commands");
		for (const generation of generations) {
			const firstToken = Date.parse(io(generation, "langfuse.observation.completion_start_time"));
			expect(firstToken).toBeGreaterThanOrEqual(ms(generation.startNs));
			expect(firstToken).toBeLessThanOrEqual(ms(generation.endNs));
			expect(json(generation, "langfuse.observation.model.parameters")).toEqual({ maxOutputTokens: 8192 });
		}
	});

	test("the provider's API key (in chat.params provider options) never leaves: not sent, printed or spooled", () => {
		expect(JSON.stringify(receiver.spans)).toContain(result.sessionId!);
		expect(JSON.stringify(receiver.spans)).not.toContain("mock-key");
		expect(result.stdout + result.stderr).not.toContain("mock-key");
		const spooled = spoolDirs.flatMap(dir => [...new Bun.Glob("**/*").scanSync({ cwd: dir, dot: true })].map(file => readFileSync(join(dir, file), "utf8")));
		expect(spooled.join("")).not.toContain("mock-key");
	});

	test("the same file, in the same project's .opencode/plugin/, also traces omp there (no second copy)", async () => {
		const plugin = join(result.cwd, ".opencode", "plugin", "langfuse.ts");
		expect(existsSync(plugin)).toBe(true);
		const omp = await runOmp({ prompt: "RUN<<echo from omp>>", mockUrl: mock.url, cwd: result.cwd, extensions: [plugin], env: tracingEnv(), timeoutMs: 60_000 });
		expect(omp.code).toBe(0);
		const roots = latest(receiver.spans.filter(span => attr(span, "session.id") === omp.sessionId && !span.parentSpanId));
		expect(roots).toHaveLength(1);
		expect(traceMeta(roots[0]!, "host")).toBe("omp");
		omp.cleanup();
	}, 60_000);
});

describe("opencode: a subagent is its own session, linked to its parent's task call", () => {
	test("child trace names the parent session, trace and task tool observation", async () => {
		await receiver.reset();
		mock.reset();
		const result = await runOpencode({ prompt: "Delegate: SPAWN<<RUN<<echo from child>>>>", mockUrl: mock.url, pluginFile: LANGFUSE_TS, env: tracingEnv(), timeoutMs: 60_000 });
		try {
			expect(result.code).toBe(0);
			const child = result.sessions.find(session => session.parentId === result.sessionId)!;
			expect(child).toBeDefined();
			const spans = latest(receiver.spans);
			expect(new Set(spans.map(span => attr(span, "session.id")))).toEqual(new Set([result.sessionId, child.id]));
			const task = spans.find(span => span.name === "task" && type(span) === "tool")!;
			expect(attr(task, "session.id")).toBe(result.sessionId);
			expect(meta(task, "childSessionId")).toBe(child.id);
			const childRoot = spans.find(span => !span.parentSpanId && attr(span, "session.id") === child.id)!;
			expect(traceMeta(childRoot, "parentSessionId")).toBe(result.sessionId);
			expect(traceMeta(childRoot, "parentTraceId")).toBe(task.traceId);
			expect(traceMeta(childRoot, "parentObservationId")).toBe(task.spanId);
			expect(attr(childRoot, "langfuse.trace.tags")).toContain("subagent");
			const childTools = spans.filter(span => attr(span, "session.id") === child.id && type(span) === "tool");
			expect(childTools.map(span => io(span, "langfuse.observation.input").command)).toEqual(["echo from child"]);
			// every LLM call of both sessions, and nothing else, is a generation
			const generations = spans.filter(span => type(span) === "generation");
			expect(generations).toHaveLength(mock.modelCalls().length);
			const opencodeCost = sum(result.sessions.map(session => session.messages.reduce((total, message) => total + message.cost, 0)));
			expect(sum(generations.map(span => json(span, "langfuse.observation.cost_details").total ?? 0))).toBeCloseTo(opencodeCost, 12);
		} finally {
			result.cleanup();
		}
	}, 90_000);
});

describe("opencode: traced, disabled, misconfigured or Langfuse down — OpenCode behaves as without the plugin", () => {
	const runs: Record<string, OpencodeRunResult> = {};
	const retried: Record<string, OpencodeRunResult> = {};
	/** dispose may wait for Langfuse at most SHUTDOWN_BUDGET_MS (1.5 s); the rest is the machine's noise. */
	const limit = () => Math.max(runs["no plugin"]!.ms, runs["no plugin, again"]!.ms) + 3_000;
	let stalled: Receiver;
	const variants: Record<string, () => Record<string, string> | undefined> = {
		"no plugin": () => undefined,
		"tracing on": () => tracingEnv(),
		"OPENCODE_LANGFUSE_ENABLED=false": () => tracingEnv({ OPENCODE_LANGFUSE_ENABLED: "false" }),
		"no keys": () => ({}),
		"Langfuse down (closed port)": () => tracingEnv({ LANGFUSE_HOST: "http://127.0.0.1:9" }),
		"Langfuse hangs": () => tracingEnv({ LANGFUSE_HOST: stalled.url }),
	};

	beforeAll(async () => {
		await receiver.reset();
		stalled = await startReceiver({ mode: { stallMs: 30_000 } });
		const run = (env: Record<string, string> | undefined) =>
			runOpencode({ prompt: TWO_TOOLS, mockUrl: mock.url, pluginFile: env ? LANGFUSE_TS : undefined, config: CONFIG, env, timeoutMs: 60_000 });
		for (const [name, env] of Object.entries(variants)) runs[name] = await run(env());
		// a second run without the plugin: how much OpenCode's own time varies on this machine
		runs["no plugin, again"] = await run(undefined);
		// a busy machine makes single runs seconds slower: a variant over the limit gets one more try
		for (const [name, env] of Object.entries(variants).slice(1)) {
			if (runs[name]!.ms < limit()) continue;
			const again = await run(env());
			console.log(`${name}: ${runs[name]!.ms} ms, again ${again.ms} ms`);
			if (again.ms < runs[name]!.ms) [runs[name], retried[name]] = [again, runs[name]!];
			else retried[name] = again;
		}
		console.log(`opencode run times: ${Object.entries(runs).map(([name, result]) => `${name} ${result.ms} ms`).join(", ")}`);
	}, 180_000);
	afterAll(async () => {
		for (const run of [...Object.values(runs), ...Object.values(retried)]) run.cleanup();
		await stalled?.close();
	});

	for (const name of Object.keys(variants).slice(1)) {
		test(`${name}: same exit code, same output, not noticeably slower`, () => {
			const baseline = runs["no plugin"]!;
			const variant = runs[name]!;
			expect(baseline.code).toBe(0);
			expect(variant.code).toBe(baseline.code);
			expect(variant.stdout).toBe(baseline.stdout);
			expect(variant.stderr).not.toContain("[langfuse] internal error");
			expect(variant.ms).toBeLessThan(limit());
		});
	}

	test("off or unconfigured: one clear line, nothing sent", () => {
		const disabled = runs["OPENCODE_LANGFUSE_ENABLED=false"]!.stderr.split("\n").filter(line => line.startsWith("[langfuse]"));
		expect(disabled).toEqual(["[langfuse] tracing off: LANGFUSE_ENABLED is false"]);
		const unconfigured = runs["no keys"]!.stderr.split("\n").filter(line => line.startsWith("[langfuse]"));
		expect(unconfigured).toEqual(["[langfuse] tracing off: LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY not set"]);
		const quiet = [runs["OPENCODE_LANGFUSE_ENABLED=false"]!.sessionId, runs["no keys"]!.sessionId];
		expect(quiet.every(Boolean)).toBe(true);
		expect(receiver.spans.filter(span => quiet.includes(String(attr(span, "session.id"))))).toHaveLength(0);
		expect(receiver.spans.some(span => attr(span, "session.id") === runs["tracing on"]!.sessionId)).toBe(true);
	});

	test("Langfuse down: what could not be sent waits in the spool", () => {
		const down = runs["Langfuse down (closed port)"]!;
		const spoolDir = down.env.LANGFUSE_SPOOL_DIR!;
		const files = new Bun.Glob("*.jsonl*").scanSync({ cwd: spoolDir });
		const spooled = [...files].map(file => readFileSync(join(spoolDir, file), "utf8")).join("");
		expect(spooled).toContain(down.sessionId!);
		expect(spooled).not.toContain("sk-lf-test");
	});
});
