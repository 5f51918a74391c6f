/**
 * `npm run bench` — what the sanitizer costs, measured against its peer: a plain JSON.stringify of the
 * same payload, in the same process, interleaved, medians over many runs. The sanitizer runs on the
 * exporter's side of the queue (a flush), never inside a hook the host awaits; this says how much CPU
 * that flush spends per byte the agent produced.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import langfuse from "../langfuse.ts";
import { generateHistory } from "./support/import-history.ts";
import { startReceiver } from "./support/receiver.ts";

const { makeRedactor, prepareRecord, encodeRecord, createRuntime, runImport } = (langfuse as any).internals;
const RUNS = Number(process.env.BENCH_RUNS ?? 25);

// A realistic environment: the redactor also looks for the values of secret-named variables.
const redact = makeRedactor({
	env: { ...process.env, OPENAI_API_KEY: "sk-proj-bench0000000000000000000000000000000000", GITHUB_TOKEN: "ghp_bench00000000000000000000000000000000" },
});
const options = { redact, maxFieldChars: 64_000, budgetChars: 1_024_000, exportMode: "full" };

function logLines(bytes: number): string {
	const lines = [
		"2026-11-23T09:15:01.123Z INFO  server listening on http://127.0.0.1:8080 (pid 4242)",
		"    at processTicksAndRejections (node:internal/process/task_queues:95:5)",
		'{"level":"debug","msg":"cache hit","key":"user:8f14e45f-ceea-467f-a0e6-2f4bd4f6a9a1","ms":3}',
		"src/components/Button.tsx(42,7): error TS2322: Type 'string' is not assignable to type 'number'.",
		"✓ renders the dashboard (12 ms)   commit 3f2c1a9e8b7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b",
		"export const handler = async (event: APIGatewayProxyEvent) => ({ statusCode: 200, body: JSON.stringify(event) });",
	];
	const out: string[] = [];
	let size = 0;
	for (let i = 0; size < bytes; i++) {
		const line = lines[i % lines.length]!;
		out.push(line);
		size += line.length + 1;
	}
	return out.join("\n");
}

const base = { traceId: "0".repeat(32), id: "1".repeat(16), sessionId: "bench", emissionId: "e", startMs: 0, endMs: 1 };

/** A 10 MB tool output: one tool observation. */
const bigToolOutput = [{ ...base, type: "tool", name: "bash", input: { command: "cat build.log" }, output: logLines(10 * 1024 * 1024) }];

/** A typical session: 40 LLM calls over a growing conversation, 40 tool calls of 1–6 KB. */
function typicalSession() {
	const records: any[] = [];
	const history: any[] = [{ role: "system", content: "You are a coding agent. ".repeat(60) }];
	for (let i = 0; i < 40; i++) {
		history.push({ role: "user", content: `Step ${i}: ${logLines(400)}` });
		records.push({
			...base,
			type: "generation",
			name: "claude-sonnet",
			model: "claude-sonnet",
			input: [...history],
			output: [{ type: "text", text: logLines(800) }, { type: "toolCall", id: `call_${i}`, name: "bash", arguments: { command: "bun test" } }],
			usage: { input: 1000 + i, output: 50, total: 1050 + i },
		});
		const toolOutput = logLines(1024 * (1 + (i % 6)));
		records.push({ ...base, type: "tool", name: "bash", input: { command: "bun test" }, output: toolOutput });
		history.push({ role: "assistant", content: logLines(300) }, { role: "tool", content: toolOutput });
	}
	return records;
}

function median(values: number[]): number {
	const sorted = [...values].sort((a, b) => a - b);
	return sorted[Math.floor(sorted.length / 2)]!;
}

function measure(label: string, records: any[]) {
	const stringify: number[] = [];
	const sanitize: number[] = [];
	const wire: number[] = [];
	let bytesIn = 0;
	let bytesOut = 0;
	for (let run = 0; run < RUNS; run++) {
		let t = performance.now();
		bytesIn = JSON.stringify(records).length;
		stringify.push(performance.now() - t);
		t = performance.now();
		const prepared: unknown[] = records.map(record => prepareRecord(record, options));
		sanitize.push(performance.now() - t);
		t = performance.now();
		bytesOut = prepared.map(record => encodeRecord(record, "otel")[0]).reduce((sum, span) => sum + span.length, 0);
		wire.push(performance.now() - t);
	}
	const peer = median(stringify);
	const row = {
		payload: label,
		"JSON.stringify": `${peer.toFixed(2)} ms`,
		"sanitize (redact+truncate)": `${median(sanitize).toFixed(2)} ms`,
		ratio: `${(median(sanitize) / peer).toFixed(2)}×`,
		"sanitize+encode OTLP": `${(median(sanitize) + median(wire)).toFixed(2)} ms`,
		"ratio ": `${((median(sanitize) + median(wire)) / peer).toFixed(2)}×`,
		"bytes in → out": `${(bytesIn / 1024 / 1024).toFixed(1)} MB → ${(bytesOut / 1024 / 1024).toFixed(2)} MB`,
	};
	return row;
}

const rows = [measure("10 MB tool output", bigToolOutput), measure("typical session (40 LLM + 40 tool calls)", typicalSession())];
console.log(`medians of ${RUNS} interleaved runs, ${process.versions.bun ? `bun ${process.versions.bun}` : `node ${process.version}`}`);
console.table(rows);

/**
 * `bun langfuse.ts import`: sessions per second from omp/pi session files (generated from the import
 * fixtures, 10 kB prompts) to a local receiver in this process, until Langfuse confirmed everything.
 */
async function measureImport(count: number, runs: number) {
	const root = mkdtempSync(join(tmpdir(), "lf-bench-import-"));
	const history = join(root, "history");
	const made = generateHistory(history, count, 10_000);
	const receiver = await startReceiver();
	const times: number[] = [];
	let last: any;
	try {
		for (let run = 0; run < runs; run++) {
			const env = { LANGFUSE_PUBLIC_KEY: "pk-lf-bench", LANGFUSE_SECRET_KEY: "sk-lf-bench", LANGFUSE_HOST: receiver.url, LANGFUSE_SPOOL_DIR: join(root, `spool-${run}`) };
			const runtime = createRuntime(env, { exitHook: false, replaySpool: false, write: () => {} });
			const started = performance.now();
			last = await runImport(runtime, { paths: [history] });
			times.push(performance.now() - started);
			runtime.exporter?.stop();
			if (last.traces !== made.traces || last.problems.length || last.stalled) throw new Error(`import bench: expected ${made.traces} traces, got ${JSON.stringify(last)}`);
			await receiver.reset();
		}
	} finally {
		await receiver.close();
		rmSync(root, { recursive: true, force: true });
	}
	const seconds = median(times) / 1000;
	return {
		payload: `history import: ${count} session files (${made.sessions} sessions, ${(made.bytes / 1024 / 1024).toFixed(1)} MB) → receiver`,
		"median time": `${(seconds * 1000).toFixed(0)} ms`,
		"files/s": Math.round(count / seconds),
		"sessions/s": Math.round(made.sessions / seconds),
		"observations/s": Math.round(last.observations / seconds),
		"MB/s read": Number((made.bytes / 1024 / 1024 / seconds).toFixed(1)),
	};
}

const IMPORT_RUNS = Number(process.env.BENCH_IMPORT_RUNS ?? 5);
console.log(`history import, median of ${IMPORT_RUNS} runs`);
console.table([await measureImport(Number(process.env.BENCH_IMPORT_SESSIONS ?? 200), IMPORT_RUNS)]);
