/**
 * Resilience, end to end: real omp and pi processes, a local Langfuse receiver that fails on purpose,
 * and the private disk spool in between (issue #4). Every scenario uses its own receiver and a fresh
 * spool directory, and runs sequentially (the machine has two cores).
 *
 * How "exactly once" is counted: a delivery is the pair (spanId, endTimeUnixNano). A trace's root
 * span is legitimately sent twice — announced when the prompt starts (end = start) and completed
 * when it ends — so per spanId the root of a finished prompt is expected twice and every other span
 * once, while every (spanId, end) pair must arrive exactly once. Ingestion events are counted by
 * their event id (the dedup key), which is unique per emission.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Subprocess } from "bun";
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runOmp, runPi, type AgentRunResult } from "./support/hosts.ts";
import { e2eRig } from "./support/rig.ts";
import { startReceiver, type IngestionEvent, type ReceivedSpan, type Receiver, type ReceiverMode } from "./support/receiver.ts";
import { attr, latest, type } from "./support/spans.ts";

const LANGFUSE_TS = process.env.LANGFUSE_TS ?? new URL("../langfuse.ts", import.meta.url).pathname;
const PUBLIC_KEY = "pk-lf-resilience";
/** Distinctive, so any leak into a spool file or stderr is found by a plain substring search. */
const SECRET_KEY = "sk-lf-resilience-7f3a9c2e5b1d4068";
const FLUSH_MS = 300;
const TWO_TOOLS = "Run two commands: RUN<<echo one>> RUN<<cat /nonexistent-file>>";
const TWO_TOOLS_ANSWER = "DONE: 2 commands";
const HELLO = "Say hello";
const HELLO_ANSWER = "Hello from mock";

const rig = e2eRig();
const { receivers, temporary, results } = rig;

async function newReceiver(mode?: ReceiverMode): Promise<Receiver> {
	const receiver = await startReceiver(mode ? { mode } : {});
	receivers.push(receiver);
	return receiver;
}

/** A spool path that does not exist yet, so langfuse.ts itself creates it (and its mode is its doing). */
function newSpoolDir(): string {
	const parent = mkdtempSync(join(tmpdir(), "lf-resilience-"));
	temporary.push(parent);
	return join(parent, "spool");
}

function scratchDir(): string {
	const dir = mkdtempSync(join(tmpdir(), "lf-resilience-scratch-"));
	temporary.push(dir);
	return dir;
}

function tracingEnv(receiver: Receiver, spool: string, extra: Record<string, string> = {}): Record<string, string> {
	return {
		LANGFUSE_PUBLIC_KEY: PUBLIC_KEY,
		LANGFUSE_SECRET_KEY: SECRET_KEY,
		LANGFUSE_HOST: receiver.url,
		LANGFUSE_SPOOL_DIR: spool,
		LANGFUSE_FLUSH_MS: String(FLUSH_MS),
		...extra,
	};
}

interface TimedRun extends AgentRunResult {
	/** Spawn → the answer appeared on stdout (what the user waits for); undefined if it never did. */
	answerMs?: number;
	/** Date.now() bounds of the run, to attribute receiver requests to it. */
	startedAt: number;
	endedAt: number;
}

interface AgentOptions {
	host?: "omp" | "pi";
	prompt?: string;
	/** Text whose appearance on stdout marks the answer (default: the prompt's known answer). */
	answer?: string;
	env: Record<string, string>;
	onSpawn?: (child: Subprocess) => void;
	killGroupOnExit?: boolean;
	timeoutMs?: number;
}

/** One real omp/pi run with the extension, timing both the answer and the exit. */
async function runAgent(options: AgentOptions): Promise<TimedRun> {
	const prompt = options.prompt ?? TWO_TOOLS;
	const answer = options.answer ?? (prompt === TWO_TOOLS ? TWO_TOOLS_ANSWER : prompt === HELLO ? HELLO_ANSWER : undefined);
	let answerMs: number | undefined;
	let poll: ReturnType<typeof setInterval> | undefined;
	const startedAt = Date.now();
	const run = options.host === "pi" ? runPi : runOmp;
	const result = await run({
		prompt,
		mockUrl: rig.mock.url,
		extensions: [LANGFUSE_TS],
		env: options.env,
		timeoutMs: options.timeoutMs ?? 60_000,
		killGroupOnExit: options.killGroupOnExit,
		onSpawn: child => {
			const spawned = performance.now();
			if (answer) {
				// hosts.ts sends stdout to a file; find it through /proc and watch for the answer.
				let stdoutFile: string | undefined;
				try {
					stdoutFile = readlinkSync(`/proc/${child.pid}/fd/1`);
				} catch {}
				if (stdoutFile) {
					poll = setInterval(() => {
						try {
							if (readFileSync(stdoutFile!, "utf8").includes(answer)) {
								answerMs = Math.round(performance.now() - spawned);
								clearInterval(poll);
							}
						} catch {}
					}, 10);
				}
			}
			options.onSpawn?.(child);
		},
	});
	clearInterval(poll);
	// printed in the last moments before exit, between two polls: count it as printed at the exit
	if (answerMs === undefined && answer && result.stdout.includes(answer)) answerMs = result.ms;
	results.push(result);
	return { ...result, answerMs, startedAt, endedAt: Date.now() };
}

// ── spool and receiver bookkeeping ──────────────────────────────────────────────────────────────

interface SpooledRecord {
	id: string;
	traceId: string;
	parentId?: string;
	type: string;
	name: string;
	startMs: number;
	endMs: number;
	sessionId: string;
	emissionId: string;
	trace?: unknown;
	metadata?: Record<string, unknown>;
}

/** `<ms>-<pid>-<seq>.<destination>.jsonl`, `.<pid>` while claimed (files of 0.1 had no destination). */
const SPOOL_FILE = /^\d+-\d+-[0-9a-f]+(\.[0-9a-f]{12})?\.jsonl(\.\d+)?$/;

function spoolFiles(dir: string): string[] {
	try {
		return readdirSync(dir)
			.filter(name => SPOOL_FILE.test(name))
			.sort();
	} catch {
		return [];
	}
}

/**
 * One spooled item as a record. The private format: a header line, then per line one encoded item
 * exactly as it is sent — an OTLP span, or a legacy ingestion event (trace-create events are skipped).
 */
function spooledRecord(line: string): (SpooledRecord & { level?: string; statusMessage?: string }) | undefined {
	const value = JSON.parse(line);
	if (value.v === 2) return undefined; // the header
	if (value.spanId) {
		const attrs: Record<string, any> = {};
		for (const { key, value: v } of value.attributes ?? []) attrs[key] = v.stringValue ?? v.boolValue ?? v.doubleValue ?? v.intValue ?? v.arrayValue;
		const parse = (text: unknown) => (typeof text === "string" ? JSON.parse(text) : undefined);
		return {
			id: value.spanId,
			traceId: value.traceId,
			parentId: value.parentSpanId,
			type: attrs["langfuse.observation.type"],
			name: value.name,
			startMs: Number(BigInt(value.startTimeUnixNano) / 1_000_000n),
			endMs: Number(BigInt(value.endTimeUnixNano) / 1_000_000n),
			sessionId: attrs["session.id"],
			emissionId: `${value.spanId}-${value.endTimeUnixNano}`,
			trace: attrs["langfuse.trace.name"] === undefined ? undefined : { name: attrs["langfuse.trace.name"] },
			metadata: parse(attrs["langfuse.observation.metadata"]),
			level: attrs["langfuse.observation.level"],
			statusMessage: attrs["langfuse.observation.status_message"],
		};
	}
	if (value.type === "trace-create" || !value.body) return undefined;
	const body = value.body;
	return {
		id: body.id,
		traceId: body.traceId,
		parentId: body.parentObservationId,
		type: body.metadata?.observationType ?? "span",
		name: body.name,
		startMs: Date.parse(body.startTime),
		endMs: Date.parse(body.endTime ?? body.startTime),
		sessionId: "",
		emissionId: String(value.id).replace(/-o$/, ""),
		metadata: body.metadata,
		level: body.level,
		statusMessage: body.statusMessage,
	};
}

/** Every record in the spool. */
function spoolRecords(dir: string): SpooledRecord[] {
	const records: SpooledRecord[] = [];
	for (const name of spoolFiles(dir)) {
		for (const line of readFileSync(join(dir, name), "utf8").split("\n")) {
			if (!line.trim()) continue;
			const record = spooledRecord(line);
			if (record) records.push(record);
		}
	}
	return records;
}

/** What is still in the spool, one line per record, so a failing "spool is empty" says what was left and why. */
function leftovers(dir: string): string[] {
	return spoolFiles(dir).flatMap(name =>
		readFileSync(join(dir, name), "utf8")
			.split("\n")
			.filter(line => line.trim())
			.flatMap(line => {
				const record = spooledRecord(line);
				if (!record) return [];
				return [`${name}: ${record.type} "${record.name}" session=${record.sessionId} start=${record.startMs} end=${record.endMs} ${record.level ?? ""} ${record.statusMessage ?? ""}`.trim()];
			}),
	);
}

const pair = (spanId: string, endMs: number) => `${spanId}@${endMs}`;
const endMsOf = (span: ReceivedSpan) => Number(BigInt(span.endNs) / 1_000_000n);
const spanPair = (span: ReceivedSpan) => pair(span.spanId, endMsOf(span));
const recordPair = (record: SpooledRecord) => pair(record.id, Math.round(record.endMs));
const ofSession = (spans: ReceivedSpan[], sessionId: string | undefined) => spans.filter(span => span.attributes["session.id"] === sessionId);
/** An input/output attribute as text: strings go out as they are or JSON-encoded, depending on the version. */
function plainText(value: unknown): unknown {
	if (typeof value !== "string") return value;
	try {
		const parsed = JSON.parse(value);
		return typeof parsed === "string" ? parsed : value;
	} catch {
		return value;
	}
}

function countBy<T>(items: T[], key: (item: T) => string): Map<string, number> {
	const counts = new Map<string, number>();
	for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
	return counts;
}

const duplicates = (counts: Map<string, number>) => [...counts].filter(([, count]) => count > 1).map(([key, count]) => `${key} ×${count}`);

/**
 * Every (spanId, end) pair exactly once; per spanId, a root twice when its prompt ended (start
 * announcement + completion; once, completed, when both fell into one flush) or once when the
 * process died mid-prompt, every other span once.
 */
function expectExactlyOnce(spans: ReceivedSpan[], rootDeliveries: 1 | 2) {
	expect(spans.length).toBeGreaterThan(0);
	expect(duplicates(countBy(spans, spanPair))).toEqual([]);
	const byId = countBy(spans, span => span.spanId);
	const roots = new Set(spans.filter(span => !span.parentSpanId).map(span => span.spanId));
	expect(roots.size).toBe(1);
	for (const [id, count] of byId) {
		if (roots.has(id) && rootDeliveries === 2 && count === 1) {
			// announcement and completion fell into one flush: a request carries only a span's latest
			// version, so the one delivery is the completed root
			const root = spans.find(span => span.spanId === id)!;
			expect(root.endNs).not.toBe(root.startNs);
			continue;
		}
		expect(`${id} ×${count}`).toBe(`${id} ×${roots.has(id) ? rootDeliveries : 1}`);
	}
}

/** The TWO_TOOLS prompt as a complete trace: 3 LLM calls, 2 tools, 2 turns, root with the answer. */
function expectCompleteTwoToolTrace(spans: ReceivedSpan[]) {
	const current = latest(spans);
	expect(current.filter(span => type(span) === "generation")).toHaveLength(3);
	expect(current.filter(span => type(span) === "tool").map(span => span.name)).toEqual(["bash", "bash"]);
	expect(current.filter(span => span.name.startsWith("turn"))).toHaveLength(3); // one turn per LLM call
	const roots = current.filter(span => !span.parentSpanId);
	expect(roots).toHaveLength(1);
	expect(plainText(attr(roots[0]!, "langfuse.trace.output"))).toBe(TWO_TOOLS_ANSWER);
}

/** The same check on spooled records (what a process left on disk). */
function expectCompleteTwoToolRecords(records: SpooledRecord[]) {
	const current = [...new Map(records.map(record => [record.id, record])).values()];
	expect(current.filter(record => record.type === "generation")).toHaveLength(3);
	expect(current.filter(record => record.type === "tool")).toHaveLength(2);
	expect(current.filter(record => record.name.startsWith("turn"))).toHaveLength(3);
	expect(current.filter(record => !record.parentId)).toHaveLength(1);
	// announced + completed; one, completed, when both versions fell into one flush (latest wins)
	const roots = records.filter(record => !record.parentId);
	expect([1, 2]).toContain(roots.length);
	expect(roots.at(-1)!.endMs).toBeGreaterThan(roots.at(-1)!.startMs);
}

/**
 * Runs a prompt whose tool sleeps 5 s and sends SIGINT 200 ms after the tool has started, with a
 * flush interval far beyond the run: only what runs as the process ends can send or spool anything.
 */
async function runInterruptedAtTool(host: "omp" | "pi", receiver: Receiver, spool: string) {
	const marker = join(scratchDir(), "tool-started");
	/** Touched when the 5 s tool ends: absent after the run, the process did not wait for the tool. */
	const finished = join(scratchDir(), "tool-finished");
	let toolStarted = false;
	let signalledAt = 0;
	const run = await runAgent({
		host,
		prompt: `Wait: RUN<<touch ${marker} && sleep 5 && touch ${finished}>>`,
		env: tracingEnv(receiver, spool, { LANGFUSE_FLUSH_MS: "600000" }),
		killGroupOnExit: true,
		timeoutMs: 30_000,
		onSpawn: child => {
			void (async () => {
				toolStarted = await waitForFile(marker, 20_000);
				await Bun.sleep(200);
				signalledAt = Date.now();
				process.kill(child.pid, "SIGINT");
			})();
		},
	});
	return { run, toolStarted, signalledAt, toolFinished: existsSync(finished) };
}

async function waitForFile(file: string, timeoutMs: number): Promise<boolean> {
	const deadline = Date.now() + timeoutMs;
	while (!existsSync(file)) {
		if (Date.now() > deadline) return false;
		await Bun.sleep(10);
	}
	return true;
}

function killGroup(pid: number, signal: NodeJS.Signals) {
	try {
		process.kill(-pid, signal);
	} catch {
		try {
			process.kill(pid, signal);
		} catch {}
	}
}

const timings: string[] = [];
afterAll(() => {
	if (timings.length) console.log(`resilience timings:\n  ${timings.join("\n  ")}`);
});

// ════════════════════════════════════════════════════════════════════════════════════════════════

describe("omp: two Langfuse projects on one machine, one spool (issue 10.1)", () => {
	test("after project A's outage each project receives exactly its own traces", async () => {
		const a = await newReceiver("down");
		const b = await newReceiver();
		const spool = newSpoolDir();
		const projectA = { LANGFUSE_PUBLIC_KEY: "pk-lf-project-a-0000" };
		const projectB = { LANGFUSE_PUBLIC_KEY: "pk-lf-project-b-0000" };
		const first = await runAgent({ prompt: HELLO, env: tracingEnv(a, spool, projectA) });
		expect(first.code).toBe(0);
		expect(spoolRecords(spool).some(record => record.sessionId === first.sessionId)).toBe(true);
		// project B's agent starts while A's batches wait in the same spool: it sends only its own
		const second = await runAgent({ prompt: HELLO, env: tracingEnv(b, spool, projectB) });
		expect(second.code).toBe(0);
		await b.waitFor(spans => ofSession(spans, second.sessionId).some(span => !span.parentSpanId && span.endNs !== span.startNs), 5000).catch(() => {});
		expect(ofSession(b.spans, second.sessionId).length).toBeGreaterThan(0);
		expect(ofSession(b.spans, first.sessionId)).toEqual([]);
		expect(new Set(b.spans.map(span => span.attributes["session.id"]))).toEqual(new Set([second.sessionId]));
		// A is back: A's next agent delivers A's spooled session, once, to A only
		await a.setMode("ok");
		const third = await runAgent({ prompt: HELLO, env: tracingEnv(a, spool, projectA) });
		expect(third.code).toBe(0);
		await a.waitFor(spans => ofSession(spans, first.sessionId).some(span => !span.parentSpanId && span.endNs !== span.startNs), 5000).catch(() => {});
		expectExactlyOnce(ofSession(a.spans, first.sessionId), 2);
		expect(new Set(a.spans.map(span => span.attributes["session.id"]))).toEqual(new Set([first.sessionId, third.sessionId]));
		expect(ofSession(b.spans, first.sessionId)).toEqual([]);
		expect(leftovers(spool)).toEqual([]);
	}, 90_000);
});

describe("omp: Langfuse down for a whole session, then up", () => {
	let receiver: Receiver;
	let spool: string;
	let first: TimedRun;
	let second: TimedRun;
	let spooled: SpooledRecord[];
	let spooledFiles: string[];
	let spoolMode = 0;
	/** Every file in the spool directory right after the first run (read before the replay deletes them). */
	const spoolContents: Record<string, { mode: number; text: string }> = {};
	const prompt = `Run two commands: RUN<<echo token=${SECRET_KEY}>> RUN<<cat /nonexistent-file>>`;

	beforeAll(async () => {
		receiver = await newReceiver("down");
		spool = newSpoolDir();
		first = await runAgent({ prompt, answer: TWO_TOOLS_ANSWER, env: tracingEnv(receiver, spool, { LANGFUSE_DEBUG: "1" }) });
		spooledFiles = spoolFiles(spool);
		spooled = spoolRecords(spool);
		spoolMode = statSync(spool).mode & 0o777;
		for (const name of readdirSync(spool)) {
			const file = join(spool, name);
			spoolContents[name] = { mode: statSync(file).mode & 0o777, text: readFileSync(file, "utf8") };
		}
		await receiver.setMode("ok");
		second = await runAgent({ prompt: HELLO, env: tracingEnv(receiver, spool, { LANGFUSE_DEBUG: "1" }) });
		const expected = new Set(spooled.map(recordPair));
		await receiver.waitFor(spans => [...expected].every(key => spans.some(span => spanPair(span) === key)), 5000).catch(() => {});
		timings.push(`down→up: session ${first.ms} ms (receiver down), next start ${second.ms} ms`);
	}, 60_000);

	test("the agent is unaffected while Langfuse is down", () => {
		expect(first.code).toBe(0);
		expect(first.stdout).toContain(TWO_TOOLS_ANSWER);
	});

	test("the whole session waits in the spool, released for the next process", () => {
		expect(spooledFiles.length).toBeGreaterThan(0);
		// a clean exit gives claimed files back (no `.<pid>` suffix left behind)
		expect(spooledFiles.filter(name => /\.\d+$/.test(name))).toEqual([]);
		expect(new Set(spooled.map(record => record.sessionId))).toEqual(new Set([first.sessionId!]));
		expectCompleteTwoToolRecords(spooled);
	});

	test("spool files are 0600 in a 0700 directory; no secret key in the spool or on stderr", () => {
		expect(spoolMode.toString(8)).toBe("700");
		expect(Object.keys(spoolContents).filter(name => name.endsWith(".tmp"))).toEqual([]);
		const auth = Buffer.from(`${PUBLIC_KEY}:${SECRET_KEY}`).toString("base64");
		for (const [name, { mode, text }] of Object.entries(spoolContents)) {
			expect(`${name} ${mode.toString(8)}`).toBe(`${name} 600`);
			expect(text).not.toContain(SECRET_KEY);
			expect(text).not.toContain(auth);
		}
		// the secret went through the agent (a tool printed it): it must have been redacted, not dropped
		expect(Object.values(spoolContents).some(({ text }) => text.includes("token="))).toBe(true);
		expect(first.stderr).not.toContain(SECRET_KEY);
		expect(second.stderr).not.toContain(SECRET_KEY);
	});

	test("the next agent start delivers every spooled span of the first session exactly once", () => {
		expect(second.code).toBe(0);
		const session = ofSession(receiver.spans, first.sessionId);
		expect(new Set(session.map(spanPair))).toEqual(new Set(spooled.map(recordPair)));
		expectExactlyOnce(session, 2);
		expectCompleteTwoToolTrace(session);
		// the second session is traced too, and nothing is left behind
		expectExactlyOnce(ofSession(receiver.spans, second.sessionId), 2);
		expect(leftovers(spool)).toEqual([]);
	});
});

// ════════════════════════════════════════════════════════════════════════════════════════════════

describe("omp: kill -9 mid-session, then a restart", () => {
	const SLEEPY = (marker: string) => `Wait: RUN<<touch ${marker} && sleep 5>>`;

	/** Runs a prompt whose tool sleeps; SIGKILLs the process group two flush intervals after the tool started. */
	async function killedRun(receiver: Receiver, spool: string): Promise<TimedRun & { toolStarted: boolean }> {
		const marker = join(scratchDir(), "tool-started");
		let toolStarted = false;
		const run = await runAgent({
			prompt: SLEEPY(marker),
			env: tracingEnv(receiver, spool),
			timeoutMs: 30_000,
			onSpawn: child => {
				void (async () => {
					toolStarted = await waitForFile(marker, 20_000);
					await Bun.sleep(2 * FLUSH_MS + 100);
					killGroup(child.pid, "SIGKILL");
				})();
			},
		});
		return { ...run, toolStarted };
	}

	/** Root announcement (end = start) and the first LLM call: recorded before the tool started. */
	function expectRootAndFirstCall(spans: ReceivedSpan[]) {
		const root = spans.find(span => !span.parentSpanId);
		expect(root).toBeDefined();
		expect(root!.endNs).toBe(root!.startNs);
		expect(spans.filter(span => type(span) === "generation").length).toBeGreaterThanOrEqual(1);
	}

	test("Langfuse up: what was sent before the kill is not sent again by the restart", async () => {
		const receiver = await newReceiver();
		const spool = newSpoolDir();
		const killed = await killedRun(receiver, spool);
		expect(killed.toolStarted).toBe(true);
		expect(killed.signalCode).toBe("SIGKILL");
		const sessionId = killed.sessionId ?? String(receiver.spans[0]?.attributes["session.id"]);
		const beforeRestart = ofSession(receiver.spans, sessionId).map(spanPair);
		expectRootAndFirstCall(ofSession(receiver.spans, sessionId));
		const restart = await runAgent({ prompt: HELLO, env: tracingEnv(receiver, spool) });
		expect(restart.code).toBe(0);
		await receiver.waitFor(spans => ofSession(spans, restart.sessionId).length >= 3, 5000).catch(() => {});
		const session = ofSession(receiver.spans, sessionId);
		expect(session.map(spanPair).sort()).toEqual(beforeRestart.sort());
		expectExactlyOnce(session, 1);
		expect(leftovers(spool)).toEqual([]);
		timings.push(`kill -9 (up): killed after ${killed.ms} ms, restart ${restart.ms} ms`);
	}, 60_000);

	test("Langfuse down: the spool of the killed process is delivered once by the restart", async () => {
		const receiver = await newReceiver("down");
		const spool = newSpoolDir();
		const killed = await killedRun(receiver, spool);
		expect(killed.toolStarted).toBe(true);
		expect(killed.signalCode).toBe("SIGKILL");
		const spooled = spoolRecords(spool);
		const sessionId = killed.sessionId ?? spooled[0]?.sessionId;
		// recorded at least one flush interval before the kill: the root announcement and the first LLM call
		expect(spooled.some(record => !record.parentId && record.endMs === record.startMs)).toBe(true);
		expect(spooled.some(record => record.type === "generation")).toBe(true);
		await receiver.setMode("ok");
		const restart = await runAgent({ prompt: HELLO, env: tracingEnv(receiver, spool) });
		expect(restart.code).toBe(0);
		const expected = new Set(spooled.map(recordPair));
		await receiver.waitFor(spans => [...expected].every(key => spans.some(span => spanPair(span) === key)), 5000).catch(() => {});
		const session = ofSession(receiver.spans, sessionId);
		expect(new Set(session.map(spanPair))).toEqual(expected);
		expectExactlyOnce(session, 1);
		expectRootAndFirstCall(session);
		expect(leftovers(spool)).toEqual([]);
		timings.push(`kill -9 (down): killed after ${killed.ms} ms, restart ${restart.ms} ms, ${spooled.length} records replayed`);
	}, 60_000);
});

// ════════════════════════════════════════════════════════════════════════════════════════════════

describe("omp: a failing Langfuse never slows the agent, and everything arrives exactly once", () => {
	type Variant = { name: string; mode: ReceiverMode; env?: Record<string, string> };
	const variants: Variant[] = [
		{ name: "healthy", mode: "ok" },
		{ name: "429 storm (Retry-After: 1)", mode: { status: 429, retryAfter: 1 } },
		{ name: "run of 500s", mode: { status: 500, times: 4 } },
		{ name: "15 s stall", mode: { stallMs: 15_000 } },
		{ name: "207, half the events failed (ingestion)", mode: { partial207: true }, env: { LANGFUSE_TRANSPORT: "ingestion" } },
	];
	const state = new Map<string, { receiver: Receiver; spool: string; runs: TimedRun[]; replay?: TimedRun; failingRequests: number; spooledAfterRuns: number }>();
	/** Interleaved rounds of every variant; run times are printed for the benchmark, never asserted. */
	const ROUNDS = 2;
	const isStall = (variant: Variant) => typeof variant.mode === "object" && "stallMs" in variant.mode;

	beforeAll(async () => {
		for (const variant of variants) state.set(variant.name, { receiver: await newReceiver(), spool: newSpoolDir(), runs: [], failingRequests: 0, spooledAfterRuns: 0 });
		for (let round = 0; round < ROUNDS; round++) {
			for (const variant of variants) {
				const s = state.get(variant.name)!;
				await s.receiver.setMode(variant.mode);
				s.runs.push(await runAgent({ env: tracingEnv(s.receiver, s.spool, variant.env) }));
			}
		}
		// Langfuse recovers; the next agent start (same spool) delivers what the failing runs left.
		for (const variant of variants) {
			const s = state.get(variant.name)!;
			s.failingRequests = s.receiver.requests.length;
			s.spooledAfterRuns = spoolRecords(s.spool).length;
			await s.receiver.setMode("ok");
			s.replay = await runAgent({ prompt: HELLO, env: tracingEnv(s.receiver, s.spool, variant.env) });
			timings.push(
				`${variant.name}: answer ${s.runs.map(run => run.answerMs).join("/")} ms, exit ${s.runs.map(run => run.ms).join("/")} ms, replay ${s.replay.ms} ms, ${s.failingRequests} requests while failing`,
			);
		}
	}, 170_000);

	for (const variant of variants.slice(1)) {
		test(`${variant.name}: same answer, exit 0; a stall ends at the shutdown deadline with the data spooled`, () => {
			const healthy = state.get("healthy")!.runs;
			const { runs, spooledAfterRuns } = state.get(variant.name)!;
			for (const run of [...healthy, ...runs]) {
				expect(run.code).toBe(0);
				expect(run.stdout).toContain(TWO_TOOLS_ANSWER);
				expect(run.answerMs).toBeNumber();
			}
			// a stalled request is never confirmed: the exporter stopped at its deadline, its data on disk
			if (isStall(variant)) expect(spooledAfterRuns).toBeGreaterThan(0);
		});
	}

	test("healthy: every span of both sessions exactly once", () => {
		const { receiver, runs } = state.get("healthy")!;
		for (const run of runs) {
			const session = ofSession(receiver.spans, run.sessionId);
			expectExactlyOnce(session, 2);
			expectCompleteTwoToolTrace(session);
		}
	});

	for (const name of ["429 storm (Retry-After: 1)", "run of 500s"]) {
		test(`${name}: every span arrives exactly once (by the next start at the latest), spool empty`, async () => {
			const { receiver, runs, replay, spool } = state.get(name)!;
			await receiver
				.waitFor(spans => runs.every(run => latest(ofSession(spans, run.sessionId)).filter(span => type(span) === "generation").length === 3), 5000)
				.catch(() => {});
			for (const run of [...runs, replay!]) {
				const session = ofSession(receiver.spans, run.sessionId);
				expectExactlyOnce(session, 2);
				if (run !== replay) expectCompleteTwoToolTrace(session);
			}
			expect(leftovers(spool)).toEqual([]);
		});
	}

	test("429 storm: Retry-After is honoured (one process never retries sooner than 1 s)", () => {
		const { receiver, runs } = state.get("429 storm (Retry-After: 1)")!;
		for (const run of runs) {
			const times = receiver.requests.filter(request => request.status === 429 && request.at >= run.startedAt && request.at <= run.endedAt).map(request => request.at);
			expect(times.length).toBeGreaterThan(0);
			for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(950);
		}
	});

	test("run of 500s: backoff, no hammering (at least 0.5 s between retries of one process)", () => {
		const { receiver, runs } = state.get("run of 500s")!;
		for (const run of runs) {
			const times = receiver.requests.filter(request => request.status === 500 && request.at >= run.startedAt && request.at <= run.endedAt).map(request => request.at);
			for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(450);
		}
	});

	test("15 s stall: the requests it abandoned are delivered once by the next process", async () => {
		const { receiver, runs, replay, spool, failingRequests } = state.get("15 s stall")!;
		// Requests that arrived during the stall were abandoned by their sender (10 s abort, 1.5 s shutdown
		// budget, process exit) but this receiver still processes them 15 s later. Langfuse would do the same:
		// a request whose answer never came back is at-least-once by nature (Langfuse upserts by span id).
		// Count only deliveries the sender could have seen confirmed: requests after the stall ended.
		const confirmed = (spans: ReceivedSpan[]) => spans.filter(span => span.requestIndex >= failingRequests);
		await receiver
			.waitFor(spans => runs.every(run => latest(ofSession(confirmed(spans), run.sessionId)).filter(span => type(span) === "generation").length === 3), 5000)
			.catch(() => {});
		for (const run of [...runs, replay!]) {
			const session = ofSession(confirmed(receiver.spans), run.sessionId);
			expectExactlyOnce(session, 2);
			if (run !== replay) expectCompleteTwoToolTrace(session);
		}
		expect(leftovers(spool)).toEqual([]);
	});

	/** Ingestion events of one session: its trace-create events and every event of those traces. */
	const sessionEvents = (events: IngestionEvent[], sessionId: string | undefined) => {
		const traces = new Set(events.filter(event => event.type === "trace-create" && event.body.sessionId === sessionId).map(event => String(event.body.id)));
		return events.filter(event => traces.has(String(event.type === "trace-create" ? event.body.id : event.body.traceId)));
	};
	const PARTIAL = "207, half the events failed (ingestion)";

	test("207 with half the events failed: every observation arrives, each created once, nothing left in the spool", async () => {
		const { receiver, runs, replay, spool } = state.get(PARTIAL)!;
		await Bun.sleep(200);
		for (const run of [...runs, replay!]) {
			const events = sessionEvents(receiver.events, run.sessionId);
			expect(events.length).toBeGreaterThan(0);
			if (run === replay) continue;
			const observations = events.filter(event => event.type !== "trace-create");
			const byObservation = countBy(observations, event => String(event.body.id));
			expect(new Set(observations.filter(event => event.type === "generation-create").map(event => String(event.body.id))).size).toBe(3);
			expect(new Set(observations.filter(event => (event.body.metadata as any)?.observationType === "tool").map(event => String(event.body.id))).size).toBe(2);
			// the root observation and its trace: announced and completed, so twice each — once each when
			// both versions fell into one flush (a request carries only the latest); everything else once
			const traceCreates = new Set(events.filter(event => event.type === "trace-create").map(event => event.id)).size;
			expect([1, 2]).toContain(traceCreates);
			expect([...byObservation.values()].filter(count => count === 2)).toHaveLength(traceCreates - 1);
			expect([...byObservation.values()].filter(count => count > 2)).toEqual([]);
		}
		expect(leftovers(spool)).toEqual([]);
	});

	// KNOWN BUG (report: "207 resends accepted events"): after a 207 the whole record is resent, so the
	// trace-create that was accepted next to a failed observation event is accepted a second time.
	test("207 with half the events failed: no ingestion event is accepted twice (only failed events are resent)", () => {
		const { receiver, runs, replay } = state.get(PARTIAL)!;
		for (const run of [...runs, replay!]) expect(duplicates(countBy(sessionEvents(receiver.events, run.sessionId), event => event.id))).toEqual([]);
	});
});

// ════════════════════════════════════════════════════════════════════════════════════════════════

describe("omp: a session longer than the request timeout, against a 15 s stall", () => {
	test("each stalled request is aborted after 10 s and retried; the next start delivers everything once", async () => {
		const receiver = await newReceiver({ stallMs: 15_000 });
		const spool = newSpoolDir();
		const long = await runAgent({ prompt: "Wait: RUN<<sleep 13>>", answer: "DONE: 1 commands", env: tracingEnv(receiver, spool), timeoutMs: 40_000 });
		expect(long.code).toBe(0);
		expect(long.answerMs).toBeNumber();
		const stalled = receiver.requests.length;
		const arrivals = receiver.requests.map(request => request.at);
		// the first request hangs; it is aborted (the request timeout) and retried within the run (the
		// 13 s tool leaves room for the backoff after the 10 s abort even when the first flush starts late)
		expect(arrivals.length).toBeGreaterThanOrEqual(2);
		// the exporter stopped at its shutdown deadline with what was unconfirmed on disk
		expect(leftovers(spool).length).toBeGreaterThan(0);
		await receiver.setMode("ok");
		const replay = await runAgent({ prompt: HELLO, env: tracingEnv(receiver, spool) });
		expect(replay.code).toBe(0);
		// deliveries the sender could have seen confirmed (see the 15 s stall above for the abandoned ones)
		const confirmed = () => receiver.spans.filter(span => span.requestIndex >= stalled);
		await receiver.waitFor(() => latest(ofSession(confirmed(), long.sessionId)).filter(span => !span.parentSpanId && span.endNs !== span.startNs).length === 1, 5000).catch(() => {});
		const session = ofSession(confirmed(), long.sessionId);
		expectExactlyOnce(session, 2);
		expect(latest(session).filter(span => type(span) === "generation")).toHaveLength(2);
		expect(leftovers(spool)).toEqual([]);
		timings.push(`long session vs stall: answer ${long.answerMs} ms, exit ${long.ms} ms, requests ${arrivals.map(at => at - arrivals[0]!).join("/")} ms apart, replay ${replay.ms} ms`);
	}, 60_000);
});

describe("omp: two processes replaying one spool at once", () => {
	test("no span is sent twice, none is lost", async () => {
		const receiver = await newReceiver("down");
		const spool = newSpoolDir();
		const prepared: TimedRun[] = [];
		for (let i = 0; i < 2; i++) prepared.push(await runAgent({ env: tracingEnv(receiver, spool) }));
		const files = spoolFiles(spool);
		const spooled = spoolRecords(spool);
		expect(files.length).toBeGreaterThan(1);
		await receiver.setMode("ok");
		const contenders = await Promise.all([0, 1].map(() => runAgent({ prompt: HELLO, env: tracingEnv(receiver, spool, { LANGFUSE_DEBUG: "1" }) })));
		const expected = new Set(spooled.map(recordPair));
		await receiver.waitFor(spans => [...expected].every(key => spans.some(span => spanPair(span) === key)), 5000).catch(() => {});
		await Bun.sleep(300); // a late duplicate would arrive now
		for (const run of contenders) expect(run.code).toBe(0);
		for (const run of prepared) {
			const session = ofSession(receiver.spans, run.sessionId);
			expectExactlyOnce(session, 2);
			expectCompleteTwoToolTrace(session);
		}
		expect(new Set(receiver.spans.filter(span => prepared.some(run => run.sessionId === span.attributes["session.id"])).map(spanPair))).toEqual(expected);
		for (const run of contenders) expectExactlyOnce(ofSession(receiver.spans, run.sessionId), 2);
		expect(leftovers(spool)).toEqual([]);
		const replayed = contenders.map(run => Number(run.stderr.match(/replaying (\d+) spooled/)?.[1] ?? 0));
		timings.push(`two replayers: ${files.length} spool files, replayed ${replayed.join(" + ")} batch(es), runs ${contenders.map(run => run.ms).join("/")} ms`);
	}, 60_000);
});

// ════════════════════════════════════════════════════════════════════════════════════════════════

describe("omp: SIGINT mid-tool runs session_shutdown", () => {
	test("the trace is closed and delivered within the shutdown budget, each span once", async () => {
		const receiver = await newReceiver();
		const spool = newSpoolDir();
		const { run: interrupted, toolStarted, signalledAt, toolFinished } = await runInterruptedAtTool("omp", receiver, spool);
		expect(toolStarted).toBe(true);
		// omp gives session_shutdown at most 2 s, then exits; our flush ends at its deadline: omp was
		// gone before the 5 s tool could end (how long it took is the benchmark's business)
		expect(toolFinished).toBe(false);
		const session = ofSession(receiver.spans, interrupted.sessionId);
		expectExactlyOnce(session, 2);
		const current = latest(session);
		expect(current.filter(span => type(span) === "generation").length).toBeGreaterThanOrEqual(1);
		expect(current.filter(span => type(span) === "tool")).toHaveLength(1);
		expect(leftovers(spool)).toEqual([]);
		timings.push(`omp SIGINT: exit ${interrupted.endedAt - signalledAt} ms after the signal, ${session.length} spans delivered in the same run`);
	}, 60_000);
});

describe("pi: SIGINT exits at once without session_shutdown", () => {
	let receiver: Receiver;
	let spool: string;
	let interrupted: TimedRun;
	let toolStarted = false;
	let toolFinished = true;
	let signalledAt = 0;

	beforeAll(async () => {
		receiver = await newReceiver();
		spool = newSpoolDir();
		({ run: interrupted, toolStarted, signalledAt, toolFinished } = await runInterruptedAtTool("pi", receiver, spool));
	}, 40_000);

	test("the extension neither holds nor swallows the signal: pi dies of SIGINT at once", () => {
		expect(toolStarted).toBe(true);
		expect(interrupted.signalCode).toBe("SIGINT");
		expect(toolFinished).toBe(false); // died of the signal, not after the 5 s tool
		expect(interrupted.sessionId).toBeString();
		expect(ofSession(receiver.spans, interrupted.sessionId)).toEqual([]); // nothing was sent before the signal
		timings.push(`pi SIGINT: died ${interrupted.endedAt - signalledAt} ms after the signal`);
	});

	// pi dies by the default SIGINT action, so no 'exit' hook runs: langfuse.ts spools on the signal
	// itself, closing the open prompt (marked WARNING), then re-raises it.
	test("what was recorded reaches the spool as pi dies, and the next run delivers it once", async () => {
		const sessionId = interrupted.sessionId;
		const spooled = spoolRecords(spool);
		expect(spooled.some(record => !record.parentId && record.sessionId === sessionId)).toBe(true);
		expect(spooled.some(record => record.type === "generation")).toBe(true);
		const restart = await runAgent({ host: "pi", prompt: HELLO, env: tracingEnv(receiver, spool, { LANGFUSE_DEBUG: "1" }) });
		expect(restart.code).toBe(0);
		const expected = new Set(spooled.map(recordPair));
		await receiver.waitFor(spans => [...expected].every(key => spans.some(span => spanPair(span) === key)), 5000).catch(() => {});
		const session = ofSession(receiver.spans, sessionId);
		expect(new Set(session.map(spanPair))).toEqual(expected);
		// the root twice: announced when the prompt started, closed (WARNING) as pi died
		expectExactlyOnce(session, 2);
		const root = session.filter(span => !span.parentSpanId).at(-1)!;
		expect(root.attributes["langfuse.observation.level"]).toBe("WARNING");
		expect(leftovers(spool)).toEqual([]);
		timings.push(`pi SIGINT: exit ${interrupted.endedAt - signalledAt} ms after the signal, ${spooled.length} records spooled, restart ${restart.ms} ms`);
	}, 60_000);
});
