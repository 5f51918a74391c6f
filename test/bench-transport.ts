/**
 * Transport micro-benchmark (issue 11): one synthetic session through SessionRecorder + Exporter of the
 * langfuse.ts given as argument, against a fake Langfuse with a 30 ms round trip. Prints one JSON line:
 * CPU, agent_end flush() call time (what the hook pays), the longest event-loop stall, requests, bytes on
 * the wire, spool writes, spans recorded vs arrived. PROMPTS (100) and GAP_MS (5) set the pace.
 *   bun test/bench-transport.ts ./langfuse.ts
 *   node -e "require(\"jiti\").createJiti(__filename).import(\"./test/bench-transport.ts\")" ./langfuse.ts   (Node, as pi loads it)
 */


import * as fs from "node:fs";
import * as zlib from "node:zlib";
const arrived = new Set<string>();
const recorded = new Set<string>();
import * as os from "node:os";
import * as path from "node:path";
import { performance } from "node:perf_hooks";

const file = path.resolve(process.argv.at(-1)!);
const t0 = performance.now();
const mod = await import(file);
const importMs = performance.now() - t0;
const { readConfig, SessionRecorder, Exporter, Logger, makeRedactor } = (mod.default as any).internals;

const spool = fs.mkdtempSync(path.join(os.tmpdir(), "lf-bench-"));
const config = readConfig({ LANGFUSE_PUBLIC_KEY: "pk-lf-bench", LANGFUSE_SECRET_KEY: "sk-lf-bench", LANGFUSE_HOST: "http://bench.test", LANGFUSE_SPOOL_DIR: spool, LANGFUSE_FLUSH_MS: "2000", LANGFUSE_MAX_SPOOL_MB: "2000" }).config;
let wireBytes = 0;
let requests = 0;
const fetch = async (_url: string, init: RequestInit) => {
	const body = init.body as any;
	wireBytes += typeof body === "string" ? Buffer.byteLength(body) : body.byteLength;
	let raw = typeof body === "string" ? Buffer.from(body) : Buffer.from(body);
	if ((init.headers as any)["Content-Encoding"] === "gzip") raw = zlib.gunzipSync(raw);
	for (const s of JSON.parse(raw.toString()).resourceSpans[0].scopeSpans[0].spans) arrived.add(s.spanId);
	requests++;
	await new Promise(resolve => setTimeout(resolve, 30)); // network round trip
	return new Response("{}", { status: 200 });
};
const redact = makeRedactor({ env: process.env });
const exporter = new Exporter(config, redact, new Logger(redact, false, () => {}), { fetch });
const tmpNames = new Set<string>();
const watcher = fs.watch(spool, (_e, name) => { if (name && String(name).endsWith(".tmp")) tmpNames.add(String(name)); });
const recorder = new SessionRecorder((r: any) => (recorded.add(r.id), exporter.enqueue(r)), { sessionId: "bench", host: "pi", metadata: {}, tags: [], grouping: "prompt", exportMode: "full", tracePrefix: "" });

// event-loop stall probe
let maxGap = 0;
let last = performance.now();
let probing = true;
const probe = () => { const now = performance.now(); maxGap = Math.max(maxGap, now - last); last = now; if (probing) setTimeout(probe, 0); };
setTimeout(probe, 0);

const text = (n: number, seed: number) => { let s = ""; while (s.length < n) s += `line ${seed} ${s.length} some tool output text with numbers ${seed * 7919 % 1000}\n`; return s.slice(0, n); };
const history: any[] = [];
const flushCallUs: number[] = [];
const cpu0 = process.cpuUsage();
const wall0 = performance.now();
let t = Date.now();
const PROMPTS = Number(process.env.PROMPTS ?? 100);
const GAP = Number(process.env.GAP_MS ?? 5);
for (let p = 0; p < PROMPTS; p++) {
	history.push({ role: "user", content: `prompt ${p}: do the thing` });
	recorder.startPrompt(t++, { input: `prompt ${p}: do the thing` });
	recorder.startTurn(t++, { name: "turn" });
	for (let g = 0; g < 3; g++) {
		const id = `g${p}-${g}`;
		recorder.startGeneration(id, t++, { model: "m", input: [...history] });
		recorder.endGeneration(id, t++, { output: `answer ${p}.${g}`, usage: { input: 1000, output: 50, total: 1050 } });
		history.push({ role: "assistant", content: `answer ${p}.${g}` });
		if (g < 2) {
			const out = text(p % 10 === 9 && g === 0 ? 200_000 : 1000 + ((p * 3 + g) % 6) * 1000, p * 10 + g);
			recorder.startTool(`t${p}-${g}`, t++, { name: "bash", input: { command: `cmd ${p} ${g}` } });
			recorder.endTool(`t${p}-${g}`, t++, { output: out });
			history.push({ role: "tool", content: out });
		}
		await new Promise(resolve => setTimeout(resolve, 1)); // the agent works between events
	}
	recorder.endTurn(t++);
	recorder.endPrompt(t++, { output: `done ${p}` });
	const s = performance.now();
	void exporter.flush(); // agent_end
	flushCallUs.push((performance.now() - s) * 1000);
	await new Promise(resolve => setTimeout(resolve, GAP));
}
await exporter.shutdown(30_000);
const wallMs = performance.now() - wall0;
const cpu = process.cpuUsage(cpu0);
probing = false;
watcher.close();
exporter.stop?.();
flushCallUs.sort((a, b) => a - b);
const q = (p: number) => flushCallUs[Math.min(flushCallUs.length - 1, Math.floor(p * flushCallUs.length))]!;
console.log(JSON.stringify({
	file: path.basename(path.dirname(file)),
	runtime: typeof (globalThis as any).Bun !== "undefined" ? "bun" : "node",
	importMs: +importMs.toFixed(1),
	cpuMs: Math.round((cpu.user + cpu.system) / 1000),
	wallMs: Math.round(wallMs),
	flushCallMedianUs: +q(0.5).toFixed(1), flushCallP99Us: +q(0.99).toFixed(1), flushCallMaxUs: +flushCallUs.at(-1)!.toFixed(1),
	maxLoopStallMs: +maxGap.toFixed(1),
	requests, wireKB: Math.round(wireBytes / 1024), spoolWrites: tmpNames.size,
	recordedDistinct: recorded.size, arrivedDistinct: arrived.size, sent: exporter.status.sentSpans, dropped: exporter.status.droppedSpans, waiting: exporter.status.waitingBatches, queued: exporter.status.queued, lastError: exporter.status.lastError,
}));
fs.rmSync(spool, { recursive: true, force: true });
process.exit(0);
