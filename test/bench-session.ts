/**
 * `npm run bench` (part 2) — the session benchmark: what tracing a long pi session costs with
 * langfuse.ts, against the official Langfuse JS SDK v5 doing the same tracing, and against no tracing.
 *
 *   bun test/bench-session.ts [--quick] [--runs N] [--prompts N] [--runtimes node,bun] [--modes …]
 *                             [--no-import] [--no-rss | --rss-runs N | --long-only]
 *
 * The session (test/bench-session/session.mjs): ≥100 prompts built from the recorded pi fixture, 3 LLM
 * calls + 2 tool calls per prompt (9 observations), a conversation that grows up to pi's compaction
 * point (every LLM call's input is the whole conversation), tool outputs of 1–6 KB and every 10th
 * 200 KB. Every run is a fresh process (test/bench-session/child.mjs), modes interleaved and rotated,
 * under Node (langfuse.ts loaded with jiti, as pi loads it) and under Bun (native import, as omp).
 * Modes: `langfuse` = langfuse.ts's default export on a fake pi API; `sdk` =
 * test/bench-session/sdk-tracer.mjs (@langfuse/tracing + @langfuse/otel + NodeSDK, defaults);
 * `none` = the same host with no extension; `floor` = the least any redacting tracer does (each new text read
 * once by one regular expression, nothing kept or sent): the lower bound for every figure but bytes.
 *
 * Figures, medians over the runs:
 *   net CPU     process.cpuUsage (user+sys) of the whole run minus the median of the `none` runs
 *   hooks       time around each handler call the host makes (sync part, plus the wait if it returns a
 *               promise); session_shutdown is not a hook here: it is in `flush`
 *   loop stall  how late the host's next event-loop turn came after each event (work outside the
 *               hooks — flushes, exports — blocking the host: what a TUI would feel)
 *   flush       from session_shutdown to the receiver holding every span (each run must deliver all)
 *   wire        request body bytes as received (compressed if the sender compressed), and requests
 *   RSS         growth from the session's start to its end; and (not with --quick) in a longer
 *               session of ≥10k observations (--rss-runs N per mode and runtime, default 2), its
 *               growth and peak
 *   import      langfuse.ts's import under Node+jiti and under Bun: cold (empty jiti / Bun transpiler
 *               cache) and warm, each in a fresh process
 * The receiver runs in this process (a separate one from the measured run): it answers at once and
 * counts bytes, then gunzips if needed and collects span ids to check delivery.
 * The last line is the headline. BENCH_SDK_DIR=dir takes the SDK packages from dir/node_modules;
 * BENCH_DUMP=file appends every request body received (one per line); BENCH_DEBUG=1 sets
 * LANGFUSE_DEBUG in the runs and keeps each run's stderr in $TMPDIR/bench-<runtime>-<mode>.stderr.log; BENCH_HEAP_SNAPSHOT=dir with BENCH_NODE='a node wrapper with --expose-gc' writes a
 * heap snapshot after GC at each Node session's end (what holds the memory); BENCH_GC_END=1 with such a wrapper
 * runs a full GC before the end's RSS is taken (garbage awaiting collection vs memory kept). To profile the
 * Node child, point BENCH_NODE at a wrapper: `exec node --cpu-prof --cpu-prof-dir=DIR "$@"` (the largest
 * profile after the warm-up's is the measured langfuse run); test/bench-session/compare-dumps.mjs checks two
 * BENCH_DUMP files for the same spans (ids and times masked). Where the cost is: BENCH_SMAPS=1 prints, per
 * run, the CPU of each thread (main, V8's compiler and GC helpers, zlib's pool), V8's heap spaces and the
 * RSS by mapping; BENCH_RSS_TRACE=1 the RSS along the session; BENCH_SETTLE=1 the RSS over 20 s of idling
 * after the session (how much of the end's figure V8's memory reducer gives back once the host is idle);
 * BENCH_PAUSE_MS=n makes the host wait n ms between prompts instead of 1 (the pace V8 sizes its heap by);
 * BENCH_ALLOC_PROF=file (Node) writes a sampling profile of every allocation in the session, and with
 * BENCH_ALLOC_PROMOTED=1 of those that outlived a young-generation collection (what makes the heap grow).
 */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import { gunzipSync } from "node:zlib";

const root = path.resolve(import.meta.dir, "..");
const childScript = path.join(root, "test/bench-session/child.mjs");

// ── options ─────────────────────────────────────────────────────────────────────────────────────
const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(name);
const value = (name: string) => {
	const index = argv.indexOf(name);
	return index >= 0 ? argv[index + 1] : undefined;
};
const quick = flag("--quick");
const runs = Number(value("--runs") ?? (quick ? 2 : 5));
const prompts = Math.max(1, Number(value("--prompts") ?? 100));
const runtimes = (value("--runtimes") ?? "node,bun").split(",").filter(Boolean) as ("node" | "bun")[];
const allModes = ["none", "floor", "langfuse", "sdk"] as const;
type Mode = (typeof allModes)[number];
/** --modes langfuse,sdk: only these (no baseline → no net CPU); for quick looks and debugging. */
const modes = allModes.filter(mode => (value("--modes") ?? allModes.join(",")).split(",").includes(mode));
/** --long-only: only the ≥10k-observation RSS sessions. */
const longOnly = flag("--long-only");
const importRuns = quick ? 1 : 3;
/** The RSS check: one session of ≥10k observations per mode and runtime (not with --quick). */
const longPrompts = flag("--no-rss") || quick ? 0 : Math.ceil(10_000 / 9);
const longRuns = Number(value("--rss-runs") ?? 2);
/** Where @langfuse/* and @opentelemetry/* are installed (default: this repo's node_modules). */
const sdkFrom = process.env.BENCH_SDK_DIR ?? root;

const binaries: Record<"node" | "bun", string> = {
	node: process.env.BENCH_NODE ?? "node",
	bun: process.env.BENCH_BUN ?? (fs.existsSync(path.join(root, "node_modules/.bin/bun")) ? path.join(root, "node_modules/.bin/bun") : "bun"),
};

// ── receiver: a minimal local Langfuse that counts ──────────────────────────────────────────────
interface Tally {
	requests: number;
	bytes: number;
	spans: Set<string>;
	types: Record<string, number>;
	gzip: number;
	lastAt: number;
}
const newTally = (): Tally => ({ requests: 0, bytes: 0, spans: new Set(), types: {}, gzip: 0, lastAt: 0 });
let tally = newTally();
let waiter: { need: number; resolve: () => void } | undefined;

const SPAN_ID = /"spanId":"([0-9a-fA-F]{16})"/g;
const TYPE = /"key":"langfuse\.observation\.type","value":\{"stringValue":"(\w+)"/g;

const server = createServer((request: IncomingMessage, response: ServerResponse) => {
	const chunks: Buffer[] = [];
	request.on("data", (chunk: Buffer) => chunks.push(chunk));
	request.on("end", () => {
		const status = request.method === "POST" && request.url?.startsWith("/api/public/otel/v1/traces") ? 200 : request.method === "GET" ? 200 : 404;
		response.writeHead(status, { "Content-Type": "application/json" });
		response.end(request.url?.startsWith("/api/public/health") ? '{"status":"OK","version":"3.x-bench"}' : "{}");
		if (request.method !== "POST") return;
		const body = Buffer.concat(chunks);
		const current = tally;
		current.requests++;
		current.bytes += body.length;
		current.lastAt = performance.now();
		const gzip = /gzip/i.test(String(request.headers["content-encoding"] ?? ""));
		if (gzip) current.gzip++;
		const text = (gzip ? gunzipSync(body) : body).toString("utf8");
		if (process.env.BENCH_DUMP) fs.appendFileSync(process.env.BENCH_DUMP, `${text}\n`); // one request body per line
		// A span's attributes follow its spanId (both encoders): the text up to the next spanId is its own.
		const matches = [...text.matchAll(SPAN_ID)];
		for (let i = 0; i < matches.length; i++) {
			const id = matches[i]![1]!;
			if (current.spans.has(id)) continue; // sent again (an update): counted once
			current.spans.add(id);
			TYPE.lastIndex = matches[i]!.index!;
			const type = TYPE.exec(text);
			const end = matches[i + 1]?.index ?? text.length;
			const name = type && type.index < end ? type[1]! : "?";
			current.types[name] = (current.types[name] ?? 0) + 1;
		}
		if (waiter && current.spans.size >= waiter.need) waiter.resolve();
	});
});
await new Promise<void>(resolve => server.listen(0, "127.0.0.1", resolve));
const port = (server.address() as { port: number }).port;
const host = `http://127.0.0.1:${port}`;

// ── runs ────────────────────────────────────────────────────────────────────────────────────────
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "lf-bench-"));
const jitiCache = path.join(scratch, "jiti-cache");
const bunCache = path.join(scratch, "bun-cache");

function childEnv(extra: Record<string, string> = {}): Record<string, string> {
	const home = path.join(scratch, "home");
	fs.mkdirSync(home, { recursive: true });
	return {
		PATH: process.env.PATH ?? "/usr/bin:/bin",
		HOME: home,
		TMPDIR: scratch,
		USER: "bench",
		LANG: "C.UTF-8",
		BUN_RUNTIME_TRANSPILER_CACHE_PATH: bunCache,
		...(process.env.BENCH_HEAP_SNAPSHOT ? { BENCH_HEAP_SNAPSHOT: process.env.BENCH_HEAP_SNAPSHOT } : {}),
		...(process.env.BENCH_GC_END ? { BENCH_GC_END: process.env.BENCH_GC_END } : {}),
		...(process.env.BENCH_SMAPS ? { BENCH_SMAPS: process.env.BENCH_SMAPS } : {}),
		...(process.env.BENCH_SETTLE ? { BENCH_SETTLE: "1" } : {}),
		...(process.env.BENCH_PAUSE_MS ? { BENCH_PAUSE_MS: process.env.BENCH_PAUSE_MS } : {}),
		...(process.env.BENCH_ALLOC_PROF ? { BENCH_ALLOC_PROF: process.env.BENCH_ALLOC_PROF } : {}),
		...(process.env.BENCH_ALLOC_PROMOTED ? { BENCH_ALLOC_PROMOTED: "1" } : {}),
		...extra,
	};
}

interface Child {
	result: any;
	stderr: string;
	code: number | null;
	wallMs: number;
}

function runChild(runtime: "node" | "bun", args: string[], env: Record<string, string>, timeoutMs = 120_000): Promise<Child> {
	return new Promise(resolve => {
		const started = performance.now();
		const child = spawn(binaries[runtime], [childScript, ...args], { env, stdio: ["pipe", "pipe", "pipe"], cwd: scratch });
		let stdout = "";
		let stderr = "";
		let result: any;
		const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
		child.stderr.on("data", chunk => (stderr += chunk));
		child.stdout.on("data", chunk => {
			stdout += chunk;
			let newline: number;
			while ((newline = stdout.indexOf("\n")) >= 0) {
				const line = stdout.slice(0, newline);
				stdout = stdout.slice(newline + 1);
				if (line.startsWith("WAIT ")) void answerWait(Number(line.slice(5)), child.stdin);
				else if (line.startsWith("RESULT ")) result = JSON.parse(line.slice(7));
			}
		});
		child.on("close", code => {
			clearTimeout(timer);
			resolve({ result, stderr, code, wallMs: performance.now() - started });
		});
	});
}

/** Answers `WAIT n` once the receiver has n distinct spans (or after 20 s: then the run is flagged). */
async function answerWait(need: number, stdin: NodeJS.WritableStream) {
	let timedOut = false;
	if (tally.spans.size < need) {
		await new Promise<void>(resolve => {
			const timer = setTimeout(() => {
				timedOut = true;
				resolve();
			}, 20_000);
			waiter = {
				need,
				resolve: () => {
					clearTimeout(timer);
					resolve();
				},
			};
		});
		waiter = undefined;
	}
	stdin.write(`DONE ${JSON.stringify({ spans: tally.spans.size, timedOut })}\n`);
}

interface Run {
	mode: Mode;
	runtime: "node" | "bun";
	cpuTotal: number;
	hookMedian: number;
	hookP99: number;
	hookMax: number;
	lagP99: number;
	lagMax: number;
	flushMs: number;
	setupMs: number;
	sessionWall: number;
	rssGrowth: number;
	rssPeak: number;
	/** At the end: JS heap used / committed, and memory outside it (Buffers, zlib). */
	heapEnd: number;
	heapTotalEnd: number;
	externalEnd: number;
	bytes: number;
	requests: number;
	gzip: number;
	spans: number;
	expected: number;
	types: Record<string, number>;
	byType: Record<string, { n: number; max: number; total: number }>;
}

const failures: string[] = [];

async function sessionRun(runtime: "node" | "bun", mode: Mode, runPrompts = prompts): Promise<Run | undefined> {
	tally = newTally();
	const spool = fs.mkdtempSync(path.join(scratch, "spool-"));
	const env = childEnv(
		mode === "none" || mode === "floor"
			? {}
			: {
					LANGFUSE_PUBLIC_KEY: "pk-lf-bench-0000",
					LANGFUSE_SECRET_KEY: "sk-lf-bench-0000",
					LANGFUSE_HOST: host,
					LANGFUSE_BASE_URL: host,
					LANGFUSE_SPOOL_DIR: spool,
					...(process.env.BENCH_DEBUG ? { LANGFUSE_DEBUG: "1", OTEL_LOG_LEVEL: "debug" } : {}),
				},
	);
	const pauses = runPrompts * Number(process.env.BENCH_PAUSE_MS ?? 0);
	const child = await runChild(runtime, ["session", JSON.stringify({ mode, prompts: runPrompts, jitiCache, sdkFrom })], env, 120_000 + pauses);
	fs.rmSync(spool, { recursive: true, force: true });
	const r = child.result;
	if (child.code !== 0 || !r) {
		const said = child.stderr.trim().split("\n");
		failures.push(`${runtime} ${mode}: exit ${child.code}: ${said.find(line => line.startsWith("bench child failed")) ?? said.slice(-3).join(" | ")}`);
		return undefined;
	}
	if (r.delivered.timedOut || r.delivered.spans < r.expected) {
		const said = child.stderr.trim().split("\n").filter(line => !/POST otel|queued \d+ obs/.test(line)).slice(-3).join(" | ");
		failures.push(`${runtime} ${mode} (${runPrompts} prompts): delivered ${r.delivered.spans} of ${r.expected} spans within 20 s of the end${said ? `; stderr: ${said}` : ""}`);
	}
	if (process.env.BENCH_DEBUG) fs.writeFileSync(path.join(os.tmpdir(), `bench-${runtime}-${mode}.stderr.log`), child.stderr);
	const points: [number, number][] = r.rss;
	if (process.env.BENCH_SMAPS) console.error(child.stderr.split("\n").filter(line => line.startsWith("smaps")).join("\n"));
	if (process.env.BENCH_SETTLE) console.error(child.stderr.split("\n").filter(line => line.startsWith("settle")).join("\n"));
	if (process.env.BENCH_RSS_TRACE) console.error(`rss ${runtime} ${mode} ${runPrompts}: ${points.map(([obs, rss]) => `${obs}:${Math.round((rss - r.rssStart) / 1e6)}`).join(" ")} end:${Math.round((r.rssEnd - r.rssStart) / 1e6)}`);
	return {
		mode,
		runtime,
		cpuTotal: r.cpuTotal,
		hookMedian: r.hookMedian,
		hookP99: r.hookP99,
		hookMax: r.hookMax,
		lagP99: r.lagP99,
		lagMax: r.lagMax,
		flushMs: r.flushMs,
		setupMs: r.setupMs,
		sessionWall: r.sessionWall,
		rssGrowth: r.rssEnd - r.rssStart,
		rssPeak: Math.max(r.rssEnd, ...points.map(p => p[1])) - r.rssStart,
		heapEnd: r.heapEnd ?? 0,
		heapTotalEnd: r.heapTotalEnd ?? 0,
		externalEnd: r.externalEnd ?? 0,
		bytes: tally.bytes,
		requests: tally.requests,
		gzip: tally.gzip,
		spans: tally.spans.size,
		expected: r.expected,
		types: tally.types,
		byType: r.byType,
	};
}

async function importRun(runtime: "node" | "bun", cold: boolean): Promise<{ ms: number; cpu: number } | undefined> {
	const cache = cold ? fs.mkdtempSync(path.join(scratch, "cold-")) : undefined;
	const env = childEnv(cache ? { BUN_RUNTIME_TRANSPILER_CACHE_PATH: cache } : {});
	const child = await runChild(runtime, ["import", JSON.stringify({ jitiCache: cache ?? jitiCache })], env);
	if (cache) fs.rmSync(cache, { recursive: true, force: true });
	if (child.code !== 0 || !child.result) {
		failures.push(`${runtime} import: exit ${child.code}: ${child.stderr.trim().split("\n").slice(-3).join(" | ")}`);
		return undefined;
	}
	return child.result;
}

// ── helpers for the report ──────────────────────────────────────────────────────────────────────
const median = (values: number[]) => {
	if (!values.length) return Number.NaN;
	const sorted = [...values].sort((a, b) => a - b);
	const mid = Math.floor(sorted.length / 2);
	return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const us = (value: number) => (value >= 1000 ? `${(value / 1000).toFixed(1)} ms` : `${value.toFixed(1)} µs`);
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
const ratio = (a: number, b: number) => (Number.isFinite(a / b) && b > 0 ? `${(a / b).toFixed(2)}×` : "–");

function machine(): string {
	const cpu = os.cpus()[0]?.model ?? "?";
	const load = os.loadavg().map(l => l.toFixed(2)).join(" ");
	return `${os.availableParallelism?.() ?? os.cpus().length} cores (${cpu}), load ${load}`;
}

function versions(): Record<string, string> {
	const out: Record<string, string> = {};
	for (const runtime of runtimes) {
		const probe = spawnSync(binaries[runtime], ["-e", "console.log(typeof Bun!=='undefined'?'bun '+Bun.version:'node '+process.version)"], { encoding: "utf8" });
		out[runtime] = probe.stdout.trim() || "?";
	}
	return out;
}

// ── main ────────────────────────────────────────────────────────────────────────────────────────
const started = performance.now();
const loadBefore = machine();
const runtimeVersions = versions();
console.log(`session benchmark: ${prompts} prompts × (3 LLM calls + 2 tools) = ${prompts * 9} observations; ${runs} run(s) per mode and runtime, fresh processes, interleaved`);
console.log(`machine: ${loadBefore}; ${Object.values(runtimeVersions).join(", ")}; SDK from ${sdkFrom === root ? "node_modules" : sdkFrom}`);

// Warm-up (not counted): fills the jiti and Bun transpiler caches and the OS file cache.
for (const runtime of runtimes) for (const mode of modes) await sessionRun(runtime, mode, 2);
if (failures.length) {
	console.log(`warm-up failed, nothing measured:\n  ${failures.join("\n  ")}`);
	console.log("HEADLINE session benchmark did not run (warm-up failed; see above)");
	process.exit(1);
}

const results: Run[] = [];
for (let round = 0; round < (longOnly ? 0 : runs); round++) {
	for (const runtime of runtimes) {
		const order = modes.map((_, i) => modes[(i + round) % modes.length]!);
		for (const mode of order) {
			const run = await sessionRun(runtime, mode);
			if (run) results.push(run);
			process.stderr.write(".");
		}
	}
}
process.stderr.write("\n");

const long: Run[] = [];
for (let round = 0; longPrompts && round < longRuns; round++) {
	for (const runtime of runtimes) {
		for (const mode of modes.map((_, i) => modes[(i + round) % modes.length]!)) {
			const run = await sessionRun(runtime, mode, longPrompts);
			if (run) long.push(run);
			process.stderr.write(":");
		}
	}
	if (round === longRuns - 1) process.stderr.write("\n");
}
/** The long sessions' medians per runtime and mode. */
function longOf(runtime: string, mode: Mode) {
	const list = long.filter(r => r.runtime === runtime && r.mode === mode);
	if (!list.length) return undefined;
	return {
		n: list.length,
		rssGrowth: median(list.map(r => r.rssGrowth)),
		rssPeak: median(list.map(r => r.rssPeak)),
		cpuTotal: median(list.map(r => r.cpuTotal)),
		flushMs: median(list.map(r => r.flushMs)),
		spans: `${Math.min(...list.map(r => r.spans))}/${list[0]!.expected}`,
		heap: `${mb(median(list.map(r => r.heapEnd)))} / ${mb(median(list.map(r => r.heapTotalEnd)))} / ${mb(median(list.map(r => r.externalEnd)))}`,
	};
}

const imports: Record<string, { cold: number[]; warm: number[]; coldCpu: number[]; warmCpu: number[] }> = {};
if (!flag("--no-import")) {
	for (const runtime of runtimes) {
		const entry: (typeof imports)[string] = { cold: [], warm: [], coldCpu: [], warmCpu: [] };
		imports[runtime] = entry;
		for (let i = 0; i < importRuns; i++) {
			const cold = await importRun(runtime, true);
			if (cold) {
				entry.cold.push(cold.ms);
				entry.coldCpu.push(cold.cpu);
			}
			for (let j = 0; j < 2; j++) {
				const warm = await importRun(runtime, false);
				if (warm) {
					entry.warm.push(warm.ms);
					entry.warmCpu.push(warm.cpu);
				}
			}
		}
	}
}

// ── report ──────────────────────────────────────────────────────────────────────────────────────
interface Summary {
	cpu: number;
	net: number;
	hookMedian: number;
	hookP99: number;
	hookMax: number;
	lagP99: number;
	lagMax: number;
	flush: number;
	bytes: number;
	requests: number;
	rssGrowth: number;
	spans: string;
	setup: number;
	n: number;
}
const summaries: Record<string, Record<Mode, Summary | undefined>> = {};
for (const runtime of runtimes) {
	const of = (mode: Mode) => results.filter(r => r.runtime === runtime && r.mode === mode);
	const baseline = median(of("none").map(r => r.cpuTotal));
	const perMode = {} as Record<Mode, Summary | undefined>;
	for (const mode of modes) {
		const list = of(mode);
		if (!list.length) continue;
		perMode[mode] = {
			cpu: median(list.map(r => r.cpuTotal)),
			net: median(list.map(r => r.cpuTotal)) - baseline,
			hookMedian: median(list.map(r => r.hookMedian)),
			hookP99: median(list.map(r => r.hookP99)),
			hookMax: median(list.map(r => r.hookMax)),
			lagP99: median(list.map(r => r.lagP99)),
			lagMax: median(list.map(r => r.lagMax)),
			flush: median(list.map(r => r.flushMs)),
			bytes: median(list.map(r => r.bytes)),
			requests: median(list.map(r => r.requests)),
			rssGrowth: median(list.map(r => r.rssGrowth)),
			spans: `${Math.min(...list.map(r => r.spans))}/${list[0]!.expected}`,
			setup: median(list.map(r => r.setupMs)),
			n: list.length,
		};
	}
	summaries[runtime] = perMode;
	const sdk = perMode.sdk;
	if (!Object.keys(perMode).length) continue;
	console.log(`\n${runtimeVersions[runtime]} — medians of ${modes.map(mode => perMode[mode]?.n ?? 0).join("/")} runs (${modes.join("/")}); net = minus the no-tracing run (${(baseline / 1000).toFixed(2)} s); floor = the least a redacting tracer does`);
	console.table(
		modes
			.filter(mode => perMode[mode])
			.map(mode => {
				const s = perMode[mode]!;
				return {
					mode,
					"CPU": `${(s.cpu / 1000).toFixed(2)} s`,
					"net CPU": mode === "none" ? "–" : `${(s.net / 1000).toFixed(2)} s`,
					"vs SDK": mode === "none" || !sdk ? "" : ratio(s.net, sdk.net),
					"hook med / p99 / max": mode === "none" ? "–" : `${us(s.hookMedian)} / ${us(s.hookP99)} / ${us(s.hookMax)}`,
					"loop stall p99 / max": `${us(s.lagP99)} / ${us(s.lagMax)}`,
					"flush at end": `${s.flush.toFixed(0)} ms`,
					"wire (requests)": mode === "none" || mode === "floor" ? "–" : `${mb(s.bytes)} (${s.requests.toFixed(0)})`,
					"bytes vs SDK": mode === "none" || mode === "floor" || !sdk ? "" : ratio(s.bytes, sdk.bytes),
					"spans": mode === "none" || mode === "floor" ? "–" : s.spans,
					"RSS +session": mb(s.rssGrowth),
					"load+setup": `${s.setup.toFixed(0)} ms`,
				};
			}),
	);
	// Where langfuse.ts's hook time goes: the slowest event types by their worst call.
	const ours = results.filter(r => r.runtime === runtime && r.mode === "langfuse");
	if (ours.length) {
		const names = [...new Set(ours.flatMap(r => Object.keys(r.byType)))];
		const rows = names
			.map(name => ({
				event: name,
				calls: ours[0]!.byType[name]?.n ?? 0,
				"mean": us(median(ours.map(r => (r.byType[name] ? r.byType[name]!.total / r.byType[name]!.n : 0)))),
				"max (median of runs)": median(ours.map(r => r.byType[name]?.max ?? 0)),
				"total per session": `${(median(ours.map(r => r.byType[name]?.total ?? 0)) / 1000).toFixed(1)} ms`,
			}))
			.sort((a, b) => b["max (median of runs)"] - a["max (median of runs)"])
			.slice(0, 6)
			.map(row => ({ ...row, "max (median of runs)": us(row["max (median of runs)"]) }));
		console.log(`langfuse.ts hooks by event type (${runtime}), slowest first:`);
		console.table(rows);
	}
}

if (long.length) {
	console.log(`\nRSS over a ${longPrompts}-prompt session (${longPrompts * 9} observations), medians of ${longRuns} run(s): growth from the session's start to its end (and peak); net = minus the no-tracing run's`);
	console.table(
		runtimes.flatMap(runtime =>
			modes
				.map(mode => [mode, longOf(runtime, mode)] as const)
				.filter(([, s]) => s)
				.map(([mode, s]) => {
					const none = longOf(runtime, "none");
					return {
						runtime: runtimeVersions[runtime],
						mode,
						"RSS growth (peak)": `${mb(s!.rssGrowth)} (${mb(s!.rssPeak)})`,
						"net of none": mode === "none" || !none ? "–" : mb(s!.rssGrowth - none.rssGrowth),
						"net CPU": mode === "none" || !none ? "–" : `${((s!.cpuTotal - none.cpuTotal) / 1000).toFixed(2)} s`,
						spans: mode === "none" || mode === "floor" ? "–" : s!.spans,
						"flush at end": `${s!.flushMs.toFixed(0)} ms`,
						"heap used / committed / external at end": s!.heap,
					};
				}),
		),
	);
}

if (Object.keys(imports).length) {
	console.log(`\nimport of langfuse.ts (fresh process each; cold = empty jiti / Bun transpiler cache): wall ms (CPU ms), medians`);
	console.table(
		Object.entries(imports).map(([runtime, entry]) => ({
			runtime: runtime === "node" ? `${runtimeVersions.node} + jiti` : runtimeVersions.bun,
			cold: `${median(entry.cold).toFixed(1)} ms (${median(entry.coldCpu).toFixed(0)})`,
			warm: `${median(entry.warm).toFixed(1)} ms (${median(entry.warmCpu).toFixed(0)})`,
			runs: `${entry.cold.length} cold, ${entry.warm.length} warm`,
		})),
	);
}

const types = results.find(r => r.mode === "langfuse")?.types;
const sdkTypes = results.find(r => r.mode === "sdk")?.types;
console.log(`\nobservation types received — langfuse.ts: ${JSON.stringify(types ?? {})}; SDK: ${JSON.stringify(sdkTypes ?? {})}`);
console.log(`machine after: ${machine()}; total ${((performance.now() - started) / 1000).toFixed(0)} s`);
if (failures.length) console.log(`PROBLEMS (these runs are not trustworthy):\n  ${failures.join("\n  ")}`);

function rssText(runtime: string): string {
	const ours = longOf(runtime, "langfuse");
	const sdk = longOf(runtime, "sdk");
	const floor = longOf(runtime, "floor");
	if (ours && sdk) return `RSS +${mb(ours.rssGrowth)} vs +${mb(sdk.rssGrowth)}${floor ? ` (floor +${mb(floor.rssGrowth)})` : ""} over ${longPrompts * 9} obs`;
	const s = summaries[runtime]!;
	return `RSS +${mb(s.langfuse!.rssGrowth)} vs +${mb(s.sdk!.rssGrowth)} over ${prompts * 9} obs`;
}

const headline = runtimes
	.map(runtime => {
		const s = summaries[runtime]!;
		const ours = s.langfuse;
		const sdk = s.sdk;
		if (!ours || !sdk) return `${runtime}: incomplete (a mode was not run or failed)`;
		const imp = imports[runtime];
		return (
			`${runtime}: CPU ${ratio(ours.net, sdk.net)} SDK (${(ours.net / 1000).toFixed(2)} vs ${(sdk.net / 1000).toFixed(2)} s), ` +
			`bytes ${ratio(ours.bytes, sdk.bytes)}, hook p99 ${us(ours.hookP99)} vs ${us(sdk.hookP99)} (max ${us(ours.hookMax)} vs ${us(sdk.hookMax)}), ` +
			`loop stall max ${us(ours.lagMax)} vs ${us(sdk.lagMax)}, ` +
			rssText(runtime) +
			(imp ? `, import warm ${median(imp.warm).toFixed(0)} ms cold ${median(imp.cold).toFixed(0)} ms` : "")
		);
	})
	.join(" | ");
server.close();
fs.rmSync(scratch, { recursive: true, force: true });
console.log(`HEADLINE langfuse.ts vs official SDK v5, ${prompts}-prompt pi session — ${headline}${failures.length ? " — WITH PROBLEMS" : ""}`);
process.exit(failures.length ? 1 : 0);
