/**
 * `npm run demo` — no Langfuse account, no network: a real omp session (the pinned devDependency)
 * runs against a local mock LLM with langfuse.ts loaded, its export lands in a local
 * Langfuse-compatible receiver, and this prints the trace tree Langfuse would show.
 * Without omp it replays a recorded real omp session through the same code instead.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import langfuse, { type Internals } from "../langfuse.ts";
import { BIN_DIR, runOmp } from "./support/hosts.ts";
import { startMockLlm } from "./support/mock-llm.ts";
import { startReceiver, type ReceivedSpan } from "./support/receiver.ts";
import { readRecording, replay } from "./support/replay.ts";

const LANGFUSE_TS = new URL("../langfuse.ts", import.meta.url).pathname;
const PROMPT = "Look around this project: RUN<<ls -a>> RUN<<git status --short || echo 'not a git repo'>>";

const receiver = await startReceiver();
const mock = await startMockLlm();
const spool = mkdtempSync(join(tmpdir(), "langfuse-demo-spool-"));
const env = { LANGFUSE_PUBLIC_KEY: "pk-lf-demo", LANGFUSE_SECRET_KEY: "sk-lf-demo", LANGFUSE_HOST: receiver.url, LANGFUSE_SPOOL_DIR: spool, LANGFUSE_TAGS: "demo", LANGFUSE_USER_ID: process.env.USER || "alice" };

try {
	if (existsSync(join(BIN_DIR, "omp"))) {
		console.log(`▶ omp -p ${JSON.stringify(PROMPT)}   (mock LLM at ${mock.url}, receiver at ${receiver.url})\n`);
		const run = await runOmp({ prompt: PROMPT, mockUrl: mock.url, extensions: [LANGFUSE_TS], env, timeoutMs: 60_000 });
		console.log(run.stdout.trim().replace(/^/gm, "  omp │ "));
		console.log(`  (exit ${run.code} in ${(run.ms / 1000).toFixed(1)} s)\n`);
		run.cleanup();
	} else {
		console.log("▶ omp not installed: replaying a recorded omp session (test/fixtures/omp-two-tools.jsonl)\n");
		await replayRecording(new URL("./fixtures/omp-two-tools.jsonl", import.meta.url).pathname);
	}
	await receiver.waitFor(spans => spans.some(span => !span.parentSpanId && span.endNs !== span.startNs), 5000);
	console.log(formatTraceTree(receiver.spans));
	console.log(`\n${receiver.requests.length} request(s) to ${receiver.url}/api/public/otel/v1/traces, ${receiver.spans.length} span(s).`);
	console.log("With LANGFUSE_PUBLIC_KEY / LANGFUSE_SECRET_KEY / LANGFUSE_HOST set for real, this is what your Langfuse shows.");
} finally {
	await mock.close();
	await receiver.close();
	rmSync(spool, { recursive: true, force: true });
}

/** Drives the omp adapter with a recorded event stream, exactly as omp would. */
async function replayRecording(file: string) {
	const { createRuntime, attachPiHost } = (langfuse as unknown as { internals: Internals }).internals;
	const runtime = createRuntime(env, { exitHook: false });
	await replay(readRecording(file), pi => attachPiHost(pi, runtime));
	await runtime.exporter?.flush();
	runtime.exporter?.stop();
}

/** The trace tree as Langfuse's trace view shows it: types, names, durations, tokens, cost. */
function formatTraceTree(all: ReceivedSpan[]): string {
	const spans = [...new Map(all.map(span => [span.spanId, span])).values()];
	const children = new Map<string, ReceivedSpan[]>();
	for (const span of spans) children.set(span.parentSpanId ?? "", [...(children.get(span.parentSpanId ?? "") ?? []), span]);
	for (const list of children.values()) list.sort((a, b) => (BigInt(a.startNs) < BigInt(b.startNs) ? -1 : 1));
	const lines: string[] = [];
	const seconds = (span: ReceivedSpan) => `${(Number(BigInt(span.endNs) - BigInt(span.startNs)) / 1e9).toFixed(2)} s`;
	const parse = (value: unknown) => (typeof value === "string" ? JSON.parse(value) : undefined);
	const describe = (span: ReceivedSpan) => {
		const a = span.attributes;
		const parts = [String(a["langfuse.observation.type"]).padEnd(10), span.name.slice(0, 60).padEnd(60), seconds(span).padStart(7)];
		const usage = parse(a["langfuse.observation.usage_details"]);
		const cost = parse(a["langfuse.observation.cost_details"]);
		if (usage) parts.push(`  in ${usage.input ?? 0}${usage.input_cache_read ? ` (+${usage.input_cache_read} cached)` : ""} · out ${usage.output ?? 0}`);
		if (cost?.total) parts.push(` · $${cost.total.toFixed(5)}`);
		if (a["langfuse.observation.level"] === "ERROR") parts.push(`  ✗ ${String(a["langfuse.observation.status_message"] ?? "").slice(0, 40)}`);
		return parts.join(" ");
	};
	const walk = (span: ReceivedSpan, prefix: string, last: boolean) => {
		lines.push(`${prefix}${last ? "└─ " : "├─ "}${describe(span)}`);
		const kids = children.get(span.spanId) ?? [];
		kids.forEach((kid, index) => walk(kid, `${prefix}${last ? "   " : "│  "}`, index === kids.length - 1));
	};
	for (const root of children.get("") ?? []) {
		const a = root.attributes;
		const generations = spans.filter(span => span.traceId === root.traceId && span.attributes["langfuse.observation.type"] === "generation");
		const tokens = generations.reduce((sum, span) => sum + (parse(span.attributes["langfuse.observation.usage_details"])?.total ?? 0), 0);
		const cost = generations.reduce((sum, span) => sum + (parse(span.attributes["langfuse.observation.cost_details"])?.total ?? 0), 0);
		lines.push(`trace "${a["langfuse.trace.name"]}"`);
		lines.push(`  session ${a["session.id"]} · user ${a["user.id"]} · tags ${JSON.stringify(a["langfuse.trace.tags"])}`);
		lines.push(`  ${generations.length} LLM calls · ${tokens.toLocaleString("en-US")} tokens · $${cost.toFixed(5)}`);
		walk(root, "", true);
	}
	return lines.join("\n");
}
