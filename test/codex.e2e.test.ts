// Codex end to end: a real headless `codex exec` against the mock Responses API, with
// `notify = [bun, langfuse.ts, "codex-notify"]` (or, in one test, Stop hooks) configured;
// asserts on what reached the local receiver. LANGFUSE_TS picks the file under test.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { type CodexRunResult, type CodexUsage, runCodex } from "./support/hosts.ts";
import { type MockLlm, startMockLlm } from "./support/mock-llm.ts";
import type { ReceivedSpan, Receiver } from "./support/receiver.ts";
import { useReceiver, useTempDir } from "./support/rig.ts";
import { attr, io } from "./support/spans.ts";

const LF = process.env.LANGFUSE_TS ?? new URL("../langfuse.ts", import.meta.url).pathname;
const BUN = process.execPath;

let mock: MockLlm;
let receiver: Receiver;
let spoolRoot: string;
const cleanups: (() => void)[] = [];

useReceiver(started => (receiver = started));
useTempDir("lf-codex-e2e-spool-", dir => (spoolRoot = dir), "all");
beforeAll(async () => {
	mock = await startMockLlm();
});
afterAll(async () => {
	for (const cleanup of cleanups) cleanup();
	await mock.close();
});

function langfuseEnv(name: string): Record<string, string> {
	return {
		LANGFUSE_PUBLIC_KEY: "pk-lf-e2e",
		LANGFUSE_SECRET_KEY: "sk-lf-e2e",
		LANGFUSE_HOST: receiver.url,
		LANGFUSE_SPOOL_DIR: join(spoolRoot, name),
	};
}

async function codex(options: Parameters<typeof runCodex>[0]): Promise<CodexRunResult> {
	const result = await runCodex({ timeoutMs: 30_000, ...options });
	cleanups.push(result.cleanup);
	expect(result.code).toBe(0);
	return result;
}

/** Runs the notify program by hand, as Codex would, and reports how long it took. */
async function notifyAgain(run: CodexRunResult, env: Record<string, string>, turnId?: string): Promise<number> {
	const started = performance.now();
	const child = Bun.spawn([BUN, LF, "codex-notify", JSON.stringify({ type: "agent-turn-complete", "thread-id": run.threadId, "turn-id": turnId })], {
		env: { ...run.env, ...env },
		stdout: "pipe",
		stderr: "pipe",
	});
	const [stdout, stderr] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
	expect(await child.exited).toBe(0);
	expect(stdout + stderr).toBe("");
	return performance.now() - started;
}

const ofType = (spans: ReceivedSpan[], type: string) => spans.filter(span => attr(span, "langfuse.observation.type") === type);
const inSession = (threadId: string) => receiver.spans.filter(span => attr(span, "session.id") === threadId);
const rootsOf = (spans: ReceivedSpan[]) => spans.filter(span => !span.parentSpanId);

function usageTotals(usages: CodexUsage[]) {
	return usages.reduce(
		(sum, usage) => ({ input: sum.input + usage.input_tokens, output: sum.output + usage.output_tokens, total: sum.total + usage.total_tokens }),
		{ input: 0, output: 0, total: 0 },
	);
}

function generationTotals(generations: ReceivedSpan[]) {
	const sum = { input: 0, output: 0, total: 0 };
	for (const generation of generations) {
		for (const [key, value] of Object.entries(io(generation, "langfuse.observation.usage_details") as Record<string, number>)) {
			if (key === "total") sum.total += value;
			else if (key.includes("input")) sum.input += value;
			else if (key.includes("output")) sum.output += value;
		}
	}
	return sum;
}

describe("codex exec traced by langfuse.ts", () => {
	test("one shell call: one trace with prompt and answer, a generation per response, one tool; nothing twice", async () => {
		const env = langfuseEnv("one-tool");
		const prompt = "Please RUN<<echo hello-from-codex>> and report";
		const run = await codex({ prompt, mockUrl: mock.url, notify: [BUN, LF, "codex-notify"], env });
		expect(run.threadId).toBeDefined();
		const spans = await receiver.waitFor(() => rootsOf(inSession(run.threadId!)).length > 0 && ofType(inSession(run.threadId!), "generation").length === run.tokenUsages.length, 10_000);
		const mine = inSession(run.threadId!);
		expect(spans.length).toBeGreaterThanOrEqual(mine.length);

		const traces = rootsOf(mine);
		expect(traces).toHaveLength(1);
		expect(new Set(mine.map(span => span.traceId))).toEqual(new Set([traces[0]!.traceId]));
		expect(io(traces[0]!, "langfuse.trace.input")).toBe(prompt);
		expect(io(traces[0]!, "langfuse.trace.output")).toBe(run.lastAgentMessages.at(-1)!);
		expect(run.lastAgentMessages.at(-1)).toBe("DONE: 1 commands");

		const generations = ofType(mine, "generation");
		expect(generations).toHaveLength(run.tokenUsages.length);
		expect(generations).toHaveLength(mock.modelCalls().filter(call => call.body && JSON.stringify(call.body).includes("hello-from-codex")).length);
		expect(generationTotals(generations)).toEqual(usageTotals(run.tokenUsages));

		const tools = ofType(mine, "tool");
		expect(tools).toHaveLength(1);
		expect(io(tools[0]!, "langfuse.observation.input")).toEqual({ cmd: "echo hello-from-codex" });
		expect(io(tools[0]!, "langfuse.observation.output")).toContain("hello-from-codex");

		// Running the hook again sends nothing new (how fast it returns is the benchmark's business).
		const before = receiver.spans.length;
		await notifyAgain(run, env);
		await Bun.sleep(100);
		expect(receiver.spans.length).toBe(before);
		const counts = receiver.spanCountsById();
		expect(mine.filter(span => counts[span.spanId] !== 1)).toEqual([]);
	});

	test("a resumed thread: the second turn is a second trace in the same session", async () => {
		const env = langfuseEnv("resume");
		const first = await codex({ prompt: "First RUN<<echo turn-one>> please", mockUrl: mock.url, notify: [BUN, LF, "codex-notify"], env });
		await receiver.waitFor(() => rootsOf(inSession(first.threadId!)).length === 1);
		const second = await codex({
			prompt: "Second: just answer",
			mockUrl: mock.url,
			notify: [BUN, LF, "codex-notify"],
			env,
			codexHome: first.codexHome,
			args: ["resume", first.threadId!],
		});
		expect(second.threadId).toBe(first.threadId);
		await receiver.waitFor(() => rootsOf(inSession(first.threadId!)).length === 2);
		const mine = inSession(first.threadId!);
		const traces = rootsOf(mine);
		expect(traces.map(span => io(span, "langfuse.trace.input"))).toEqual(["First RUN<<echo turn-one>> please", "Second: just answer"]);
		expect(generationTotals(ofType(mine, "generation"))).toEqual(usageTotals(second.tokenUsages));
		const counts = receiver.spanCountsById();
		expect(mine.filter(span => counts[span.spanId] !== 1)).toEqual([]);
	});

	test("Stop hooks instead of notify: the turn arrives once; notify afterwards sends nothing new", async () => {
		const env = langfuseEnv("hooks");
		const command = `'${BUN}' '${LF}' codex-hook`;
		const run = await codex({
			prompt: "Hooked RUN<<echo via-hooks>> now",
			mockUrl: mock.url,
			hooks: { hooks: { Stop: [{ hooks: [{ type: "command", command }] }], SubagentStop: [{ hooks: [{ type: "command", command }] }] } },
			args: ["--dangerously-bypass-hook-trust"],
			env,
		});
		await receiver.waitFor(() => ofType(inSession(run.threadId!), "generation").length === run.tokenUsages.length);
		const mine = inSession(run.threadId!);
		expect(rootsOf(mine)).toHaveLength(1);
		expect(ofType(mine, "tool")).toHaveLength(1);
		// The Stop hook runs before Codex writes task_complete: the answer comes from the hook's input.
		expect(io(rootsOf(mine)[0]!, "langfuse.trace.output")).toBe("DONE: 1 commands");
		expect(generationTotals(ofType(mine, "generation"))).toEqual(usageTotals(run.tokenUsages));

		const before = receiver.spans.length;
		await notifyAgain(run, env);
		await Bun.sleep(100);
		expect(receiver.spans.length).toBe(before);
		const counts = receiver.spanCountsById();
		expect(inSession(run.threadId!).filter(span => counts[span.spanId] !== 1)).toEqual([]);
	});
});
