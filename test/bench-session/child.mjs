// One run of the session benchmark, in a fresh process (Node or Bun), started by ../bench-session.ts.
//   node|bun child.mjs session '{"mode":"langfuse"|"sdk"|"floor"|"none", "prompts":100, ...}'
//   node|bun child.mjs import  '{"jitiCache": dir}'     — the import cost of langfuse.ts alone
// It prints one line `RESULT {json}` on stdout. For the delivery check it writes `WAIT <n>` and
// reads `DONE <json>` on stdin: the parent's receiver answers once it has n distinct spans.
import { createInterface } from "node:readline";
import * as path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { loadTemplate, sessionEvents, OBSERVATIONS_PER_PROMPT } from "./session.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const langfusePath = path.join(root, "langfuse.ts");
const isBun = typeof globalThis.Bun !== "undefined";
const [command, optionsJson] = process.argv.slice(2);
const options = JSON.parse(optionsJson ?? "{}");
/** How long the host waits between prompts (BENCH_PAUSE_MS, default 1); a real user takes seconds. */
const pauseMs = Number(process.env.BENCH_PAUSE_MS ?? 1);

/** The resident set size alone: process.memoryUsage() would also walk the heap statistics, costing the measured run. */
const rssNow = () => (typeof process.memoryUsage.rss === "function" ? process.memoryUsage.rss() : process.memoryUsage().rss);

const cpuMs = () => {
	const { user, system } = process.cpuUsage();
	return (user + system) / 1000;
};

/** How pi (Node) loads an extension: jiti, no module cache; the fs cache dir is ours to choose. */
async function createPiJiti() {
	const { createJiti } = await import(pathToFileURL(path.join(root, "node_modules/jiti/lib/jiti.mjs")).href);
	return createJiti(import.meta.url, { moduleCache: false, fsCache: options.jitiCache });
}

async function loadLangfuse(jiti) {
	if (isBun) return (await import(pathToFileURL(langfusePath).href)).default; // omp: Bun's own import
	return await jiti.import(langfusePath, { default: true });
}

/**
 * The floor: the least any tracer that redacts can do. Each new text (prompt, reply, tool output) is read
 * once by one regular expression, which makes V8 flatten the host's string, as any scan does; nothing is
 * kept, encoded or sent. What this costs in CPU and RSS, no redacting tracer can go below.
 */
function attachFloor(pi) {
	const secret = /\b(?:sk|pk|ghp|xox[bp])[-_][A-Za-z0-9_-]{16,}/g;
	const recent = new Set();
	const scan = text => {
		if (typeof text !== "string" || recent.has(text)) return;
		recent.add(text);
		if (recent.size > 64) recent.delete(recent.values().next().value);
		text.replace(secret, "[redacted]");
	};
	pi.on("tool_result", event => {
		for (const part of event.content ?? []) scan(part.text);
	});
	pi.on("message_end", event => {
		for (const part of event.message?.content ?? []) scan(part.text);
	});
}

function send(line) {
	process.stdout.write(`${line}\n`);
}

const stdinLines = createInterface({ input: process.stdin });
const nextLine = () => new Promise(resolve => stdinLines.once("line", resolve));

async function importCost() {
	const jiti = isBun ? undefined : await createPiJiti();
	const cpu0 = cpuMs();
	const t0 = performance.now();
	const factory = await loadLangfuse(jiti);
	const ms = performance.now() - t0;
	const cpu = cpuMs() - cpu0;
	if (typeof factory !== "function") throw new Error("langfuse.ts has no default export function");
	send(`RESULT ${JSON.stringify({ ms, cpu })}`);
}

async function session() {
	const { mode, prompts } = options;
	const template = loadTemplate(path.join(root, "test/fixtures/pi-two-tools.jsonl"));
	// Every Node mode has jiti loaded, as in pi; only langfuse mode imports through it.
	const jiti = isBun ? undefined : await createPiJiti();

	/** The fake host: handlers by event name, like pi's extension runner. */
	const handlers = new Map();
	const pi = { on: (name, handler) => handlers.set(name, [...(handlers.get(name) ?? []), handler]) };
	const setup0 = performance.now();
	if (mode === "langfuse") {
		const factory = await loadLangfuse(jiti);
		factory(pi);
	} else if (mode === "floor") {
		attachFloor(pi);
	} else if (mode === "sdk") {
		const { setupSdk } = await import("./sdk-tracer.mjs");
		const tracer = await setupSdk(options.sdkFrom ?? root);
		tracer.attach(pi);
	}
	const setupMs = performance.now() - setup0;

	// BENCH_ALLOC_PROF=file (Node): a sampling profile of every allocation in the session, the collected ones
	// included (what makes the heap grow between collections), written as JSON to file
	let allocProfile;
	if (process.env.BENCH_ALLOC_PROF && !isBun) {
		const { Session } = await import("node:inspector");
		const inspector = new Session();
		inspector.connect();
		const post = (method, params) => new Promise((resolve, reject) => inspector.post(method, params, (error, result) => (error ? reject(error) : resolve(result))));
		await post("HeapProfiler.startSampling", { samplingInterval: 16384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: !process.env.BENCH_ALLOC_PROMOTED });
		allocProfile = async () => {
			const { profile } = await post("HeapProfiler.stopSampling");
			(await import("node:fs")).writeFileSync(process.env.BENCH_ALLOC_PROF, JSON.stringify(profile));
		};
	}
	const maxEvents = prompts * 70 + 10;
	const hookUs = new Float64Array(maxEvents);
	const hookType = new Array(maxEvents);
	/** How late the host's next turn of the event loop came: background work (flushes, exports) blocking it. */
	const lagUs = new Float64Array(maxEvents);
	let lags = 0;
	let hooks = 0;
	const rss = [];
	const rssStart = rssNow();
	const cpuStart = cpuMs();
	const wallStart = performance.now();
	let shutdownStart = 0;
	let promptsDone = 0;
	const rssEvery = Math.max(1, Math.floor(prompts / 20));

	for (const line of sessionEvents(template, { prompts })) {
		const list = handlers.get(line.type);
		if (line.type === "session_shutdown") shutdownStart = performance.now();
		if (list) {
			for (const handler of list) {
				const t0 = performance.now();
				const result = handler(line.event, line.ctx);
				if (result && typeof result.then === "function") await result;
				const us = (performance.now() - t0) * 1000;
				if (line.type !== "session_shutdown") {
					hookUs[hooks] = us;
					hookType[hooks++] = line.type;
				}
			}
		}
		if (line.type === "agent_end") {
			promptsDone++;
			if (promptsDone % rssEvery === 0) rss.push([promptsDone * OBSERVATIONS_PER_PROMPT, rssNow()]);
			// between prompts the host waits for the user: timers and I/O get a turn
			const t0 = performance.now();
			await new Promise(resolve => setTimeout(resolve, pauseMs));
			lagUs[lags++] = Math.max(0, performance.now() - t0 - 1) * 1000;
		} else {
			// the host streams from the network between events: the event loop turns
			const t0 = performance.now();
			await new Promise(resolve => setImmediate(resolve));
			lagUs[lags++] = (performance.now() - t0) * 1000;
		}
	}
	const sessionWall = performance.now() - wallStart;
	await allocProfile?.();
	// BENCH_HEAP_SNAPSHOT=dir (Node, with --expose-gc): a heap snapshot after GC at the session's end, for
	// finding what holds the memory (open in Chrome DevTools → Memory).
	if (process.env.BENCH_HEAP_SNAPSHOT && !isBun && typeof globalThis.gc === "function") {
		const v8 = await import("node:v8");
		await new Promise(resolve => setTimeout(resolve, 500));
		globalThis.gc();
		v8.writeHeapSnapshot(path.join(process.env.BENCH_HEAP_SNAPSHOT, `${mode}-${prompts}-${process.pid}.heapsnapshot`));
	}
	const expected = mode === "none" || mode === "floor" ? 0 : prompts * OBSERVATIONS_PER_PROMPT;
	send(`WAIT ${expected}`);
	const delivered = JSON.parse((await nextLine()).replace(/^DONE /, ""));
	const flushMs = performance.now() - shutdownStart;
	const cpuTotal = cpuMs();
	// BENCH_GC_END=1 (with --expose-gc): a full GC first, so the RSS at the end holds no garbage awaiting collection
	if (process.env.BENCH_GC_END && typeof globalThis.gc === "function") {
		await new Promise(resolve => setTimeout(resolve, 200));
		globalThis.gc();
	}
	const memoryEnd = process.memoryUsage();
	// BENCH_SETTLE=1: the host then sits idle for 20 s, as between prompts: how much RSS V8's memory reducer
	// gives back (it runs after some seconds without allocation), sampled each second
	if (process.env.BENCH_SETTLE) {
		const samples = [];
		for (let second = 1; second <= 20; second++) {
			await new Promise(resolve => setTimeout(resolve, 1000));
			samples.push(Math.round((rssNow() - rssStart) / 1e6));
		}
		process.stderr.write(`settle ${mode}: RSS growth at the end +${Math.round((memoryEnd.rss - rssStart) / 1e6)} MB, then each second idle: ${samples.join(" ")}\n`);
	}
	if (process.env.BENCH_SMAPS) {
		// where the RSS is (Linux): the malloc heap, V8's pages, thread arenas, code — by mapping
		const fs = await import("node:fs");
		const groups = {};
		let current = "";
		for (const line of fs.readFileSync("/proc/self/smaps", "utf8").split("\n")) {
			const head = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
			if (head) {
				const size = (parseInt(head[2], 16) - parseInt(head[1], 16)) / 1024;
				current = head[3] ? head[3].split("/").pop() : size >= 65536 ? "anon>=64M" : size >= 1024 ? "anon>=1M" : "anon<1M";
				continue;
			}
			const rss = /^Rss:\s+(\d+) kB/.exec(line);
			if (rss) groups[current] = (groups[current] ?? 0) + Number(rss[1]);
		}
		const threads = {};
		for (const task of fs.readdirSync("/proc/self/task")) {
			try {
				const stat = fs.readFileSync(`/proc/self/task/${task}/stat`, "utf8");
				const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
				const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
				threads[`${name}#${task}`] = (Number(fields[11]) + Number(fields[12])) * 10;
			} catch {}
		}
		if (!isBun) {
			const v8 = await import("node:v8");
			process.stderr.write(`smaps v8 ${mode}: ${v8.getHeapSpaceStatistics().map(space => `${space.space_name}=${Math.round(space.space_size / 1e6)}/${Math.round(space.space_used_size / 1e6)}`).join(" ")}\n`);
		}
		process.stderr.write(`smaps threads ms ${mode}: ${JSON.stringify(threads)}\n`);
		process.stderr.write(`smaps ${mode}: ${Object.entries(groups).sort((a, b) => b[1] - a[1]).slice(0, 8).map(([k, v]) => `${k}=${Math.round(v / 1024)}M`).join(" ")}\n`);
	}
	const rssEnd = memoryEnd.rss;

	// Per-event-type maxima, and the overall distribution.
	const times = Array.from(hookUs.subarray(0, hooks)).sort((a, b) => a - b);
	const pick = q => (times.length ? times[Math.min(times.length - 1, Math.floor(q * times.length))] : 0);
	const lagSorted = Array.from(lagUs.subarray(0, lags)).sort((a, b) => a - b);
	const byType = {};
	for (let i = 0; i < hooks; i++) {
		const entry = (byType[hookType[i]] ??= { n: 0, max: 0, total: 0 });
		entry.n++;
		entry.total += hookUs[i];
		entry.max = Math.max(entry.max, hookUs[i]);
	}
	send(
		`RESULT ${JSON.stringify({
			mode,
			runtime: isBun ? `bun ${process.versions.bun}` : `node ${process.version}`,
			prompts,
			cpuTotal,
			cpuSession: cpuTotal - cpuStart,
			setupMs,
			sessionWall,
			flushMs,
			hooks,
			hookMedian: pick(0.5),
			hookP99: pick(0.99),
			hookMax: times.length ? times[times.length - 1] : 0,
			hookTotalMs: times.reduce((sum, t) => sum + t, 0) / 1000,
			lagP99: lagSorted[Math.floor(0.99 * lagSorted.length)] ?? 0,
			lagMax: lagSorted.at(-1) ?? 0,
			byType,
			rssStart,
			rssEnd,
			heapEnd: memoryEnd.heapUsed,
			heapTotalEnd: memoryEnd.heapTotal,
			externalEnd: memoryEnd.external,
			rss,
			expected,
			delivered,
		})}`,
	);
}

try {
	if (command === "import") await importCost();
	else await session();
	process.exit(0);
} catch (error) {
	process.stderr.write(`bench child failed: ${error?.stack ?? error}\n`);
	process.exit(1);
}
