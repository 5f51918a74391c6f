/**
 * What tracing costs a user of the real hosts: `omp -p`, `pi -p` and `opencode run` with langfuse.ts
 * loaded (tracing into a local receiver) against the same run with the extension absent. Warm caches
 * (one HOME and TMPDIR per host, a warm-up run of each mode first), runs interleaved, medians.
 *
 *   bun test/bench-hosts.ts [--runs N]      (default 5 per mode and host)
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runOmp, runOpencode, runPi } from "./support/hosts.ts";
import { startMockLlm } from "./support/mock-llm.ts";
import { startReceiver } from "./support/receiver.ts";

const LANGFUSE_TS = new URL("../langfuse.ts", import.meta.url).pathname;
const PROMPT = "Run two commands: RUN<<echo one>> RUN<<cat /nonexistent-file>>";
const runsArg = process.argv.indexOf("--runs");
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 5;

const mock = await startMockLlm();
const receiver = await startReceiver();
const median = (values: number[]) => {
	const sorted = [...values].sort((a, b) => a - b);
	const middle = Math.floor(sorted.length / 2);
	return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

type Mode = "absent" | "tracing";
const hosts = ["omp", "pi", "opencode"] as const;
const rows: string[] = [];
for (const host of hosts) {
	const home = mkdtempSync(join(tmpdir(), `lf-bench-${host}-home-`));
	const tmp = mkdtempSync(join(tmpdir(), `lf-bench-${host}-tmp-`));
	const spool = mkdtempSync(join(tmpdir(), `lf-bench-${host}-spool-`));
	const times: Record<Mode, number[]> = { absent: [], tracing: [] };
	const once = async (mode: Mode): Promise<number> => {
		const tracing = mode === "tracing";
		const env = {
			TMPDIR: tmp,
			...(tracing ? { LANGFUSE_PUBLIC_KEY: "pk-lf-bench", LANGFUSE_SECRET_KEY: "sk-lf-bench", LANGFUSE_HOST: receiver.url, LANGFUSE_SPOOL_DIR: spool } : {}),
		};
		const common = { prompt: PROMPT, mockUrl: mock.url, env, home, timeoutMs: 90_000 };
		const result =
			host === "opencode"
				? await runOpencode({ ...common, pluginFile: tracing ? LANGFUSE_TS : undefined })
				: await (host === "omp" ? runOmp : runPi)({ ...common, extensions: tracing ? [LANGFUSE_TS] : [] });
		result.cleanup();
		if (result.code !== 0) throw new Error(`${host} ${mode} exited ${result.code}: ${result.stderr.slice(-400)}`);
		return result.ms;
	};
	for (const mode of ["absent", "tracing"] as const) await once(mode); // warm: compile caches, first-run setup
	for (let run = 0; run < RUNS; run++) for (const mode of ["absent", "tracing"] as const) times[mode].push(await once(mode));
	const absent = median(times.absent);
	const tracing = median(times.tracing);
	rows.push(`| ${host} | ${(absent / 1000).toFixed(2)} s | ${(tracing / 1000).toFixed(2)} s | ${tracing >= absent ? "+" : ""}${(((tracing - absent) / absent) * 100).toFixed(1)} % |`);
	for (const dir of [home, tmp, spool]) rmSync(dir, { recursive: true, force: true });
}
await mock.close();
await receiver.close();
console.log(`\nReal hosts, one prompt with two tool calls, median of ${RUNS} interleaved warm runs (spans received: ${receiver.spans.length})\n`);
console.log("| host | extension absent | tracing on | difference |\n|---|---|---|---|");
for (const row of rows) console.log(row);
