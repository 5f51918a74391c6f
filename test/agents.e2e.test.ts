/**
 * The real omp and pi binaries, headless, against the scripted mock LLM and a local
 * Langfuse-compatible receiver: what a user's session really sends.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runOmp, runPi, sumUsage, type AgentRunResult } from "./support/hosts.ts";
import { startMockLlm, type MockLlm } from "./support/mock-llm.ts";
import type { ReceivedSpan, Receiver } from "./support/receiver.ts";
import { useReceiver } from "./support/rig.ts";
import { attr, type, json, latest, sum } from "./support/spans.ts";

const LANGFUSE_TS = process.env.LANGFUSE_TS ?? new URL("../langfuse.ts", import.meta.url).pathname;
const TWO_TOOLS = "Run two commands: RUN<<echo one>> RUN<<cat /nonexistent-file>>";

let mock: MockLlm;
let receiver: Receiver;
useReceiver(started => (receiver = started));
beforeAll(async () => {
	mock = await startMockLlm();
});
afterAll(async () => {
	await mock.close();
});

function tracingEnv(extra: Record<string, string> = {}) {
	return {
		LANGFUSE_PUBLIC_KEY: "pk-lf-test",
		LANGFUSE_SECRET_KEY: "sk-lf-test",
		LANGFUSE_HOST: receiver.url,
		LANGFUSE_SPOOL_DIR: mkdtempSync(join(tmpdir(), "lf-spool-")),
		...extra,
	};
}

const hosts = [
	["omp", runOmp],
	["pi", runPi],
] as const;

for (const [host, run] of hosts) {
	describe(`${host}: a real session becomes one clean trace`, () => {
		let result: AgentRunResult;
		let spans: ReceivedSpan[];

		beforeAll(async () => {
			await receiver.reset();
			mock.reset();
			result = await run({ prompt: TWO_TOOLS, mockUrl: mock.url, extensions: [LANGFUSE_TS], env: tracingEnv(), timeoutMs: 60_000 });
			spans = latest(receiver.spans.filter(span => span.attributes["session.id"] === result.sessionId));
		}, 90_000);
		afterAll(() => result?.cleanup());

		test("the agent itself is unaffected", () => {
			expect(result.code).toBe(0);
			expect(result.stdout).toContain("DONE: 2 commands");
		});

		test("exactly one trace, in the host's session", () => {
			expect(result.sessionId).toBeString();
			expect(spans.length).toBeGreaterThan(0);
			expect(new Set(spans.map(span => span.traceId)).size).toBe(1);
			const root = spans.find(span => !span.parentSpanId)!;
			expect(attr(root, "langfuse.trace.name")).toBe(TWO_TOOLS);
			expect(attr(root, "langfuse.trace.output")).toBe("DONE: 2 commands");
			expect(json(root, "langfuse.trace.metadata").host).toBe(host);
			for (const span of spans) expect(attr(span, "session.id")).toBe(result.sessionId);
		});

		test("one generation per LLM call, one tool observation per tool call, a failing tool is ERROR", () => {
			const generations = spans.filter(span => type(span) === "generation");
			const tools = spans.filter(span => type(span) === "tool");
			expect(generations).toHaveLength(mock.modelCalls().length);
			expect(generations).toHaveLength(3);
			expect(tools.map(tool => tool.name)).toEqual(["bash", "bash"]);
			const failing = tools.find(tool => String(attr(tool, "langfuse.observation.input")).includes("nonexistent"))!;
			expect(attr(failing, "langfuse.observation.level")).toBe("ERROR");
			expect(failing.status.code).toBe(2);
			const turns = spans.filter(span => span.name.startsWith("turn"));
			for (const child of [...generations, ...tools]) expect(turns.map(turn => turn.spanId)).toContain(child.parentSpanId!);
		});

		test("token and cost sums equal the host's own session record", () => {
			const generations = spans.filter(span => type(span) === "generation");
			const usage = generations.map(span => json(span, "langfuse.observation.usage_details"));
			const cost = generations.map(span => json(span, "langfuse.observation.cost_details"));
			const host = sumUsage(result.usages);
			expect(result.usages).toHaveLength(3);
			expect(sum(usage.map(u => u.input ?? 0))).toBe(host.input);
			expect(sum(usage.map(u => u.output ?? 0))).toBe(host.output);
			expect(sum(usage.map(u => u.input_cache_read ?? 0))).toBe(host.cacheRead);
			expect(host.cacheRead).toBeGreaterThan(0);
			expect(sum(cost.map(c => c.total ?? 0))).toBeCloseTo(host.cost.total, 12);
		});

		test("generations carry model, input messages and time to first token", () => {
			const generation = spans.find(span => type(span) === "generation")!;
			expect(attr(generation, "langfuse.observation.model.name")).toBe("mock-model");
			expect(String(attr(generation, "langfuse.observation.input"))).toContain("RUN<<echo one>>");
			const firstToken = Date.parse(JSON.parse(String(attr(generation, "langfuse.observation.completion_start_time"))));
			expect(firstToken).toBeGreaterThanOrEqual(Number(BigInt(generation.startNs) / 1_000_000n));
			expect(firstToken).toBeLessThanOrEqual(Number(BigInt(generation.endNs) / 1_000_000n));
		});
	});

	describe(`${host}: a broken Langfuse or bad config never hurts the agent`, () => {
		const runs: Record<string, AgentRunResult> = {};
		const variants: Record<string, () => Record<string, string> | undefined> = {
			baseline: () => undefined,
			unreachable: () => tracingEnv({ LANGFUSE_HOST: "http://127.0.0.1:9" }),
			"bad key (401)": () => tracingEnv({ LANGFUSE_SECRET_KEY: "sk-lf-wrong", LANGFUSE_PUBLIC_KEY: "pk-lf-wrong" }),
			"garbage config": () => tracingEnv({ LANGFUSE_SAMPLE_RATE: "abc", LANGFUSE_FLUSH_MS: "soon", LANGFUSE_HOST: "not a url", LANGFUSE_REDACT_REGEX: "([" }),
		};

		// One HOME and TMPDIR for all runs, as on a user's machine: the hosts cache their compile of an
		// extension there (pi's jiti in TMPDIR: ~1 s once after each update of the file, then ~15 ms;
		// omp under HOME: ~0.25 s once). Steady state is what a user lives with.
		const sharedTmp = mkdtempSync(join(tmpdir(), "lf-tmp-"));
		const sharedHome = mkdtempSync(join(tmpdir(), "lf-home-"));
		beforeAll(async () => {
			await receiver.reset();
			await receiver.setMode({ status: 401 });
			for (const [name, env] of Object.entries(variants)) {
				const extensionEnv = env();
				runs[name] = await run({
					prompt: TWO_TOOLS,
					mockUrl: mock.url,
					extensions: extensionEnv ? [LANGFUSE_TS] : [],
					env: { ...extensionEnv, TMPDIR: sharedTmp },
					home: sharedHome,
					timeoutMs: 60_000,
				});
			}
			await receiver.setMode("ok");
			// Informational only: run time is measured by `npm run bench`, never asserted in a test.
			console.log(`${host} run times (ms): ${JSON.stringify(Object.fromEntries(Object.entries(runs).map(([name, result]) => [name, result.ms])))}`);
		}, 240_000);
		afterAll(() => {
			for (const run of Object.values(runs)) run.cleanup();
			for (const dir of [sharedTmp, sharedHome]) rmSync(dir, { recursive: true, force: true });
		});

		for (const name of ["unreachable", "bad key (401)", "garbage config"]) {
			test(`${name}: same output, same exit code as without tracing`, () => {
				const baseline = runs.baseline!;
				const variant = runs[name]!;
				expect(variant.code).toBe(baseline.code);
				expect(variant.stdout).toBe(baseline.stdout);
			});
		}

		test("each problem is one clear line on stderr, never the secret key", () => {
			const unreachable = runs.unreachable!.stderr.split("\n").filter(line => line.startsWith("[langfuse]"));
			expect(unreachable.length).toBeLessThanOrEqual(1);
			const badKey = runs["bad key (401)"]!.stderr;
			expect(badKey.match(/\[langfuse\].*HTTP 401/g)?.length).toBe(1);
			expect(badKey).not.toContain("sk-lf-wrong");
			const garbage = runs["garbage config"]!.stderr;
			for (const variable of ["LANGFUSE_SAMPLE_RATE", "LANGFUSE_FLUSH_MS", "LANGFUSE_HOST", "LANGFUSE_REDACT_REGEX"]) expect(garbage).toContain(variable);
		});
	});
}

describe("omp: the same file loaded twice, and subagents", () => {
	test("two copies of langfuse.ts in one omp trace the session once", async () => {
		await receiver.reset();
		const copy = join(mkdtempSync(join(tmpdir(), "lf-copy-")), "langfuse.ts");
		copyFileSync(LANGFUSE_TS, copy);
		const result = await runOmp({ prompt: "RUN<<echo twice>>", mockUrl: mock.url, extensions: [LANGFUSE_TS, copy], env: tracingEnv(), timeoutMs: 60_000 });
		expect(result.code).toBe(0);
		const counts = Object.values(receiver.spanCountsById());
		const rootId = receiver.spans.find(span => !span.parentSpanId)!.spanId;
		// announced at the start, completed at the end — once, completed, when both fell into one flush
		// (a request carries only a span's latest version); every other span exactly once
		const rootCount = receiver.spanCountsById()[rootId]!;
		expect([1, 2]).toContain(rootCount);
		if (rootCount === 1) expect(receiver.spans.find(span => span.spanId === rootId)!.endNs).not.toBe(receiver.spans.find(span => span.spanId === rootId)!.startNs);
		expect(counts.filter(count => count > 1)).toHaveLength(rootCount - 1);
		result.cleanup();
	}, 60_000);

	test("a subagent is its own session, linked to its parent", async () => {
		await receiver.reset();
		const result = await runOmp({ prompt: "Delegate: SPAWN<<RUN<<echo from child>>>>", mockUrl: mock.url, extensions: [LANGFUSE_TS], env: tracingEnv(), timeoutMs: 90_000 });
		expect(result.code).toBe(0);
		const sessions = new Set(receiver.spans.map(span => String(span.attributes["session.id"])));
		expect(sessions.size).toBe(2);
		const childRoot = latest(receiver.spans).find(span => !span.parentSpanId && json(span, "langfuse.trace.metadata").parentSessionId);
		expect(json(childRoot!, "langfuse.trace.metadata").parentSessionId).toBe(result.sessionId);
		expect(JSON.stringify(childRoot?.attributes["langfuse.trace.tags"])).toContain("subagent");
		result.cleanup();
	}, 120_000);
});
