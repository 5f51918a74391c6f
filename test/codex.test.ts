// Codex: `bun langfuse.ts codex-notify|codex-hook` on rollout files recorded from the real codex 0.169.0
// (test/fixtures/codex-*.rollout.jsonl), against the local receiver. The CLI runs as a subprocess,
// exactly as Codex runs it. LANGFUSE_TS picks the file under test (default: ../langfuse.ts).
import { describe, expect, test } from "bun:test";
import { appendFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ReceivedSpan, Receiver } from "./support/receiver.ts";
import { useReceiver, useTempDir } from "./support/rig.ts";
import { attr } from "./support/spans.ts";
import type { Internals } from "../langfuse.ts";

const LF = process.env.LANGFUSE_TS ?? new URL("../langfuse.ts", import.meta.url).pathname;
const FIXTURES = new URL("./fixtures/", import.meta.url).pathname;
const BUN = process.execPath;

type Json = Record<string, any>;

interface Fixture {
	text: string;
	lines: Json[];
	threadId: string;
	turns: { id: string; startedAt: number; ttft?: number; last?: string }[];
	usages: Json[];
}

function fixture(name: string): Fixture {
	const text = readFileSync(join(FIXTURES, name), "utf8");
	const lines = text.split("\n").filter(Boolean).map(line => JSON.parse(line));
	const turns: Fixture["turns"] = [];
	for (const line of lines) {
		if (line.type !== "event_msg") continue;
		if (line.payload.type === "task_started") turns.push({ id: line.payload.turn_id, startedAt: Date.parse(line.timestamp) });
		if (line.payload.type === "task_complete") {
			const turn = turns.find(t => t.id === line.payload.turn_id)!;
			turn.ttft = line.payload.time_to_first_token_ms;
			turn.last = line.payload.last_agent_message;
		}
	}
	return {
		text,
		lines,
		threadId: lines.find(line => line.type === "session_meta")!.payload.id,
		turns,
		usages: lines.filter(line => line.type === "token_usage_record").map(line => line.payload.usage),
	};
}

let receiver: Receiver;
let root: string;
let codexHome: string;
let spoolDir: string;
useReceiver(started => (receiver = started), { resetEachTest: true });
useTempDir("lf-codex-unit-", dir => {
	root = dir;
	codexHome = join(dir, "codex");
	spoolDir = join(dir, "spool");
});

/** Puts (part of) a rollout where Codex keeps it; returns its path. */
function install(f: Fixture, text = f.text): string {
	const dir = join(codexHome, "sessions", "2026", "11", "23");
	mkdirSync(dir, { recursive: true });
	const file = join(dir, `rollout-2026-11-23T09-20-48-${f.threadId}.jsonl`);
	writeFileSync(file, text);
	return file;
}

/** The rollout text up to and including the first line that matches. */
function upTo(f: Fixture, match: (line: Json) => boolean, occurrence = 1): string {
	const rows = f.text.split("\n");
	let seen = 0;
	for (let index = 0; index < rows.length; index++) {
		if (rows[index] && match(JSON.parse(rows[index]!)) && ++seen === occurrence) return rows.slice(0, index + 1).join("\n") + "\n";
	}
	throw new Error("no such line");
}

const isEvent = (type: string) => (line: Json) => line.type === "event_msg" && line.payload?.type === type;

interface CliResult {
	code: number | null;
	stdout: string;
	stderr: string;
	ms: number;
}

async function cli(args: string[], options: { stdin?: string; env?: Record<string, string | undefined> } = {}): Promise<CliResult> {
	const env: Record<string, string> = {
		PATH: process.env.PATH ?? "/usr/bin:/bin",
		HOME: root,
		CODEX_HOME: codexHome,
		LANGFUSE_PUBLIC_KEY: "pk-lf-test",
		LANGFUSE_SECRET_KEY: "sk-lf-test",
		LANGFUSE_HOST: receiver.url,
		LANGFUSE_SPOOL_DIR: spoolDir,
	};
	for (const [key, value] of Object.entries(options.env ?? {})) {
		if (value === undefined) delete env[key];
		else env[key] = value;
	}
	const started = performance.now();
	const child = Bun.spawn([BUN, LF, ...args], {
		env,
		cwd: root,
		stdin: options.stdin === undefined ? "ignore" : new Blob([options.stdin]),
		stdout: "pipe",
		stderr: "pipe",
	});
	const [stdout, stderr] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
	const code = await child.exited;
	return { code, stdout, stderr, ms: performance.now() - started };
}

const notifyArg = (f: Fixture, turn: number) =>
	JSON.stringify({ type: "agent-turn-complete", "thread-id": f.threadId, "turn-id": f.turns[turn]!.id, "input-messages": [], "last-assistant-message": f.turns[turn]!.last });
const notify = (f: Fixture, turn = 0, env?: Record<string, string | undefined>) => cli(["codex-notify", notifyArg(f, turn)], { env });

/** Input/output/usage attributes: JSON strings, or plain strings as they are. */
const jsonAttr = (span: ReceivedSpan, key: string) => parseMaybe(attr(span, key));
function parseMaybe(value: unknown): any {
	if (typeof value !== "string") return value;
	try {
		return JSON.parse(value);
	} catch {
		return value;
	}
}
/** A metadata key, sent either as `<prefix>.<key>` or inside one JSON object on `<prefix>`. */
function meta(span: ReceivedSpan, scope: "trace" | "observation", key: string): any {
	const prefix = `langfuse.${scope}.metadata`;
	if (`${prefix}.${key}` in span.attributes) return parseMaybe(span.attributes[`${prefix}.${key}`]);
	const object = parseMaybe(span.attributes[prefix]);
	return object && typeof object === "object" ? object[key] : undefined;
}
const ofType = (spans: ReceivedSpan[], type: string) => spans.filter(span => attr(span, "langfuse.observation.type") === type);
const roots = (spans: ReceivedSpan[]) => spans.filter(span => !span.parentSpanId);

/** A finished hook leaves nothing unsent: what it exported is in the receiver already. */
function expectQuietSuccess(result: CliResult) {
	expect(result.code).toBe(0);
	expect(result.stdout).toBe("");
	expect(result.stderr).toBe("");
}

function expectEachSpanOnce() {
	const counts = receiver.spanCountsById();
	expect(Object.values(counts).filter(count => count > 1)).toEqual([]);
}

function sumUsage(usages: Json[]) {
	const sum = { input: 0, output: 0, total: 0 };
	for (const usage of usages) {
		sum.input += usage.input_tokens;
		sum.output += usage.output_tokens;
		sum.total += usage.total_tokens;
	}
	return sum;
}

function sumGenerations(generations: ReceivedSpan[]) {
	const sum = { input: 0, output: 0, total: 0 };
	for (const generation of generations) {
		const details: Record<string, number> = jsonAttr(generation, "langfuse.observation.usage_details") ?? {};
		for (const [key, value] of Object.entries(details)) {
			if (key === "total") sum.total += value;
			else if (key.includes("input")) sum.input += value;
			else if (key.includes("output")) sum.output += value;
		}
	}
	return sum;
}

describe("codex-notify on a recorded rollout", () => {
	test("one shell call: one trace with prompt and answer, a generation per response, one tool", async () => {
		const f = fixture("codex-one-tool.rollout.jsonl");
		install(f);
		expectQuietSuccess(await notify(f));
		const spans = receiver.spans;
		expect(new Set(spans.map(span => span.traceId)).size).toBe(1);

		const [root] = roots(spans);
		expect(roots(spans)).toHaveLength(1);
		expect(jsonAttr(root!, "langfuse.trace.input")).toBe("ONE: run echo hi");
		expect(jsonAttr(root!, "langfuse.trace.output")).toBe(f.turns[0]!.last);
		expect(attr(root!, "session.id")).toBe(f.threadId);
		expect(attr(root!, "langfuse.trace.tags")).toContain("codex");
		expect(meta(root!, "trace", "turnId")).toBe(f.turns[0]!.id);

		const generations = ofType(spans, "generation");
		expect(generations).toHaveLength(f.usages.length);
		expect(sumGenerations(generations)).toEqual(sumUsage(f.usages));
		for (const generation of generations) {
			expect(attr(generation, "langfuse.observation.model.name")).toBe("mock-model");
			expect(generation.parentSpanId).toBe(root!.spanId);
		}
		// Codex's input_tokens include the cached ones: Langfuse gets them apart, never twice.
		const first: Record<string, number> = jsonAttr(generations[0]!, "langfuse.observation.usage_details");
		expect(first.input + (first.input_cache_read ?? 0) + (first.input_cache_creation ?? 0)).toBe(f.usages[0]!.input_tokens);
		expect(first.input_cache_read).toBe(f.usages[0]!.cached_input_tokens);
		// Time to first token: task_started + time_to_first_token_ms.
		const completionStart = Date.parse(jsonAttr(generations[0]!, "langfuse.observation.completion_start_time"));
		expect(completionStart).toBe(f.turns[0]!.startedAt + f.turns[0]!.ttft!);

		const tools = ofType(spans, "tool");
		expect(tools).toHaveLength(1);
		expect(tools[0]!.name).toBe("exec_command");
		expect(jsonAttr(tools[0]!, "langfuse.observation.input")).toEqual({ cmd: "echo hi" });
		expect(jsonAttr(tools[0]!, "langfuse.observation.output")).toContain("Output:\nhi\n");
		expect(meta(tools[0]!, "observation", "exitCode")).toBe(0);
		// The first response asked for the tool; the second answered.
		expect(jsonAttr(generations[0]!, "langfuse.observation.output").tool_calls[0].function.name).toBe("exec_command");
		expect(jsonAttr(generations[1]!, "langfuse.observation.output")).toBe(f.turns[0]!.last);
		expectEachSpanOnce();
	});

	test("idempotent: running the hook again, or the Stop hook after notify, sends nothing new", async () => {
		const f = fixture("codex-one-tool.rollout.jsonl");
		const file = install(f);
		expectQuietSuccess(await notify(f));
		const sent = receiver.spans.length;
		expect(sent).toBeGreaterThan(0);
		expectQuietSuccess(await notify(f));
		const stop = { session_id: f.threadId, turn_id: f.turns[0]!.id, transcript_path: file, hook_event_name: "Stop", last_assistant_message: f.turns[0]!.last };
		expectQuietSuccess(await cli(["codex-hook"], { stdin: JSON.stringify(stop) }));
		expect(receiver.spans.length).toBe(sent);
	});

	test("the same turn read again from scratch (cursor lost) gives the same ids", async () => {
		const f = fixture("codex-one-tool.rollout.jsonl");
		install(f);
		await notify(f);
		const first = receiver.spans.map(span => `${span.traceId}/${span.spanId}`).sort();
		await receiver.reset();
		rmSync(join(spoolDir, "codex"), { recursive: true, force: true });
		await notify(f);
		expect(receiver.spans.map(span => `${span.traceId}/${span.spanId}`).sort()).toEqual(first);
	});

	test("two turns appended over time: one trace each, one session, nothing sent twice", async () => {
		const f = fixture("codex-two-turns.rollout.jsonl");
		const firstTurn = upTo(f, isEvent("task_complete"));
		const file = install(f, firstTurn);
		expectQuietSuccess(await notify(f, 0));
		expect(roots(receiver.spans)).toHaveLength(1);

		// Codex is mid-way through the second turn, its last line half written: nothing to send yet.
		const rest = f.text.slice(firstTurn.length);
		const midTurn = upTo(f, line => line.type === "turn_context", 2).slice(firstTurn.length);
		appendFileSync(file, midTurn + rest.slice(midTurn.length, midTurn.length + 40));
		expectQuietSuccess(await notify(f, 0));
		expect(roots(receiver.spans)).toHaveLength(1);

		writeFileSync(file, f.text);
		expectQuietSuccess(await notify(f, 1));
		const traces = roots(receiver.spans);
		expect(traces).toHaveLength(2);
		expect(new Set(traces.map(span => span.traceId)).size).toBe(2);
		expect(traces.map(span => attr(span, "session.id"))).toEqual([f.threadId, f.threadId]);
		expect(jsonAttr(traces[1]!, "langfuse.trace.input")).toBe("SECOND prompt: just answer");
		expect(jsonAttr(traces[1]!, "langfuse.trace.output")).toBe("Second answer from mock.");
		expect(sumGenerations(ofType(receiver.spans, "generation"))).toEqual(sumUsage(f.usages));
		expectEachSpanOnce();
	});

	test("parallel calls: one tool observation each, paired by call id; a failing command is an error", async () => {
		const f = fixture("codex-two-tools.rollout.jsonl");
		install(f);
		expectQuietSuccess(await notify(f));
		const tools = ofType(receiver.spans, "tool");
		expect(tools.map(tool => jsonAttr(tool, "langfuse.observation.input").cmd).sort()).toEqual(["cat /nonexistent-file", "echo one"]);
		const failed = tools.find(tool => jsonAttr(tool, "langfuse.observation.input").cmd === "cat /nonexistent-file")!;
		expect(attr(failed, "langfuse.observation.level")).toBe("ERROR");
		expect(attr(failed, "langfuse.observation.status_message")).toBe("exit code 1");
		expect(jsonAttr(failed, "langfuse.observation.output")).toContain("No such file");
		const ok = tools.find(tool => tool !== failed)!;
		expect(attr(ok, "langfuse.observation.level")).toBeUndefined();
		expect(jsonAttr(ok, "langfuse.observation.output")).toContain("one");
		expect(sumGenerations(ofType(receiver.spans, "generation"))).toEqual(sumUsage(f.usages));
	});

	test("unknown record types and corrupt lines are skipped", async () => {
		const f = fixture("codex-one-tool.rollout.jsonl");
		const rows = f.text.split("\n");
		const noisy = [
			rows[0],
			'{"timestamp":"2026-11-23T09:20:48.100Z","type":"something_new","payload":{"type":"x","data":[1,2]}}',
			"{not json",
			'{"timestamp":"2026-11-23T09:20:48.100Z","type":"event_msg","payload":{"type":"brand_new_event"}}',
			'{"type":"response_item","payload":{"type":"hologram","content":"?"}}',
			...rows.slice(1),
		].join("\n");
		install(f, noisy);
		expectQuietSuccess(await notify(f));
		expect(roots(receiver.spans)).toHaveLength(1);
		expect(ofType(receiver.spans, "generation")).toHaveLength(2);
		expect(ofType(receiver.spans, "tool")).toHaveLength(1);
	});
});

describe("codex-hook", () => {
	test("Stop runs before Codex writes task_complete: the turn is sent with the hook's answer, and only once", async () => {
		const f = fixture("codex-one-tool.rollout.jsonl");
		const beforeComplete = upTo(f, isEvent("token_count"), 2);
		const file = install(f, beforeComplete);
		const stop = { session_id: f.threadId, turn_id: f.turns[0]!.id, transcript_path: file, cwd: root, hook_event_name: "Stop", stop_hook_active: false, last_assistant_message: f.turns[0]!.last };
		expectQuietSuccess(await cli(["codex-hook"], { stdin: JSON.stringify(stop) }));
		const [trace] = roots(receiver.spans);
		expect(jsonAttr(trace!, "langfuse.trace.output")).toBe(f.turns[0]!.last);
		expect(ofType(receiver.spans, "generation")).toHaveLength(2);
		expect(ofType(receiver.spans, "tool")).toHaveLength(1);
		const sent = receiver.spans.length;

		writeFileSync(file, f.text); // now Codex appends task_complete; notify follows
		expectQuietSuccess(await notify(f));
		expect(receiver.spans.length).toBe(sent);
	});

	test("other hook events only send finished turns; garbage on stdin is ignored", async () => {
		const f = fixture("codex-one-tool.rollout.jsonl");
		const file = install(f, upTo(f, isEvent("token_count"), 2));
		const post = { session_id: f.threadId, turn_id: f.turns[0]!.id, transcript_path: file, hook_event_name: "PostToolUse", tool_name: "Bash" };
		expectQuietSuccess(await cli(["codex-hook"], { stdin: JSON.stringify(post) }));
		expectQuietSuccess(await cli(["codex-hook"], { stdin: "not json at all" }));
		expectQuietSuccess(await cli(["codex-hook"], { stdin: "" }));
		expect(receiver.spans).toHaveLength(0);
	});
});

describe("subagents", () => {
	test("the child's trace names its parent thread and parent trace; both sit in the parent's session", async () => {
		const parent = fixture("codex-subagent.parent.rollout.jsonl");
		const child = fixture("codex-subagent.child.rollout.jsonl");
		install(parent);
		const childFile = install(child);
		// Codex runs notify for the child first, then for the parent.
		expectQuietSuccess(await notify(child));
		expectQuietSuccess(await notify(parent));

		const traces = roots(receiver.spans);
		expect(traces).toHaveLength(2);
		const childTrace = traces.find(span => meta(span, "trace", "threadId") === child.threadId)!;
		const parentTrace = traces.find(span => meta(span, "trace", "threadId") === parent.threadId)!;
		expect(meta(childTrace, "trace", "parentThreadId")).toBe(parent.threadId);
		expect(attr(childTrace, "langfuse.trace.tags")).toContain("subagent");
		expect(attr(parentTrace, "langfuse.trace.tags")).not.toContain("subagent");
		expect(meta(childTrace, "trace", "parentTraceId")).toBe(parentTrace.traceId);
		expect(attr(childTrace, "session.id")).toBe(parent.threadId);
		expect(attr(parentTrace, "session.id")).toBe(parent.threadId);

		const spawn = ofType(receiver.spans, "tool").find(span => span.name === "spawn_agent")!;
		expect(spawn.traceId).toBe(parentTrace.traceId);
		expect(meta(spawn, "observation", "childThreadIds")).toEqual([child.threadId]);
		const childGenerations = ofType(receiver.spans, "generation").filter(span => span.traceId === childTrace.traceId);
		expect(sumGenerations(childGenerations)).toEqual(sumUsage(child.usages));

		// SubagentStop names the parent's rollout in transcript_path, the child's in agent_transcript_path.
		const before = receiver.spans.length;
		const subagentStop = {
			session_id: parent.threadId,
			turn_id: child.turns[0]!.id,
			transcript_path: childFile.replace(child.threadId, parent.threadId),
			agent_transcript_path: childFile,
			hook_event_name: "SubagentStop",
			agent_id: child.threadId,
			last_assistant_message: child.turns[0]!.last,
		};
		expectQuietSuccess(await cli(["codex-hook"], { stdin: JSON.stringify(subagentStop) }));
		expect(receiver.spans.length).toBe(before);
		expectEachSpanOnce();
	});

	test("a forked subagent's copy of the parent's history is not sent again", async () => {
		const parent = fixture("codex-subagent.parent.rollout.jsonl");
		const child = fixture("codex-subagent.child.rollout.jsonl");
		// spawn_agent with fork_context: the child's rollout starts with the parent's session_meta and
		// its turn so far (task_started, no task_complete), then the child's own turn (measured in 0.169.0).
		const parentRows = parent.text.split("\n");
		const copied = parentRows.slice(0, parentRows.findIndex(row => row.includes('"type":"function_call"')));
		const childRows = child.text.split("\n");
		install(child, [childRows[0], ...copied, ...childRows.slice(1)].join("\n"));
		expectQuietSuccess(await notify(child));
		const traces = roots(receiver.spans);
		expect(traces).toHaveLength(1);
		expect(meta(traces[0]!, "trace", "threadId")).toBe(child.threadId);
		expect(jsonAttr(traces[0]!, "langfuse.trace.input")).toBe("ONE: Run echo hi using the shell and report.");
		expect(sumGenerations(ofType(receiver.spans, "generation"))).toEqual(sumUsage(child.usages));
	});

	test("SubagentStop alone exports the child's turn", async () => {
		const parent = fixture("codex-subagent.parent.rollout.jsonl");
		const child = fixture("codex-subagent.child.rollout.jsonl");
		const parentFile = install(parent);
		const childFile = install(child, upTo(child, isEvent("token_count"), 2));
		const subagentStop = {
			session_id: parent.threadId,
			turn_id: child.turns[0]!.id,
			transcript_path: parentFile,
			agent_transcript_path: childFile,
			hook_event_name: "SubagentStop",
			agent_id: child.threadId,
			last_assistant_message: child.turns[0]!.last,
		};
		expectQuietSuccess(await cli(["codex-hook"], { stdin: JSON.stringify(subagentStop) }));
		const traces = roots(receiver.spans);
		expect(traces).toHaveLength(1);
		expect(meta(traces[0]!, "trace", "threadId")).toBe(child.threadId);
		expect(jsonAttr(traces[0]!, "langfuse.trace.output")).toBe(child.turns[0]!.last);
	});
});

describe("whatever Langfuse does", () => {
	test("missing config, a bad argument, an unknown thread: silent, exit 0, nothing written", async () => {
		const f = fixture("codex-one-tool.rollout.jsonl");
		install(f);
		expectQuietSuccess(await notify(f, 0, { LANGFUSE_PUBLIC_KEY: undefined, LANGFUSE_SECRET_KEY: undefined }));
		expectQuietSuccess(await cli(["codex-notify", "{broken"]));
		expectQuietSuccess(await cli(["codex-notify"]));
		expectQuietSuccess(await cli(["codex-notify", JSON.stringify({ type: "agent-turn-complete", "thread-id": "01a2aaaa-0000-7000-8000-000000000000" })]));
		expect(receiver.requests.filter(request => request.method === "POST")).toHaveLength(0);
	});

	test("receiver down: exit 0 fast, the turn waits in the spool and arrives once with the next run", async () => {
		const f = fixture("codex-two-turns.rollout.jsonl");
		const firstTurn = upTo(f, isEvent("task_complete"));
		const file = install(f, firstTurn);
		await receiver.setMode("down");
		expectQuietSuccess(await notify(f, 0));
		const spooled = readdirSync(spoolDir).filter(name => name.includes(".jsonl"));
		expect(spooled.length).toBeGreaterThan(0);
		await receiver.setMode("ok");
		writeFileSync(file, f.text);
		expectQuietSuccess(await notify(f, 1));
		await receiver.waitFor(spans => roots(spans).length === 2, 5000);
		// The first run's batch goes with a detached `flush` the second run starts (outside Codex's budget):
		// it deletes its file once Langfuse has answered, a moment after the spans arrive.
		const spoolFiles = () => readdirSync(spoolDir).filter(name => name.includes(".jsonl"));
		for (const until = Date.now() + 5000; spoolFiles().length > 0 && Date.now() < until; ) await Bun.sleep(20);
		expectEachSpanOnce();
		expect(spoolFiles()).toEqual([]);
	});

	test("spool files of earlier runs are not replayed inside the run: a detached flush sends them after it", async () => {
		const f = fixture("codex-two-turns.rollout.jsonl");
		const file = install(f, upTo(f, isEvent("task_complete")));
		await receiver.setMode("down");
		expectQuietSuccess(await notify(f, 0));
		await receiver.setMode("ok");
		writeFileSync(file, f.text);
		const second = await notify(f, 1, { LANGFUSE_DEBUG: "true" });
		expect(second.code).toBe(0);
		expect(second.stderr).toContain("spooled batch(es) from earlier runs: handing them to a background flush");
		expect(second.stderr).not.toContain("replaying");
		await receiver.waitFor(spans => roots(spans).length === 2, 5000);
		const spoolFiles = () => readdirSync(spoolDir).filter(name => name.includes(".jsonl"));
		for (const until = Date.now() + 5000; spoolFiles().length > 0 && Date.now() < until; ) await Bun.sleep(20);
		expectEachSpanOnce();
		expect(spoolFiles()).toEqual([]);
	});

	test("a stalled Langfuse: the hook gives up at its budget, exit 0, the turn waits in the spool", async () => {
		const f = fixture("codex-one-tool.rollout.jsonl");
		install(f);
		await receiver.setMode({ stallMs: 5000 });
		const result = await notify(f);
		expectQuietSuccess(result);
		// the stalled request was never confirmed: the hook stopped at its deadline with the turn on disk
		expect(receiver.spans).toHaveLength(0);
		expect(readdirSync(spoolDir).filter(name => name.includes(".jsonl")).length).toBeGreaterThan(0);
		await receiver.setMode("ok");
	});

	test("LANGFUSE_DEBUG=true: the only way the hook prints", async () => {
		const f = fixture("codex-one-tool.rollout.jsonl");
		install(f);
		const result = await notify(f, 0, { LANGFUSE_DEBUG: "true" });
		expect(result.code).toBe(0);
		expect(result.stdout).toBe("");
		expect(result.stderr).toContain("[langfuse] codex:");
		expect(result.stderr).not.toContain("sk-lf-test");
	});
});

// ── parseRollout: the pure half (rollout text → RecordedPrompt), on the same recorded fixtures ─────────

const { parseRollout } = ((await import(LF)).default as unknown as { internals: Internals }).internals;
type Prompt = ReturnType<Internals["parseRollout"]>["prompts"][number];
type Step = Prompt["steps"][number];

/** The raw payloads of one type (response_item / event_msg kinds go by payload.type). */
const payloads = (f: Fixture, type: string, payloadType?: string) =>
	f.lines.filter(line => line.type === type && (payloadType === undefined || line.payload?.type === payloadType)).map(line => ({ at: Date.parse(line.timestamp), ...line.payload }));
const kinds = (prompt: Prompt) => prompt.steps.map(step => step.kind);
const stepsOf = <K extends Step["kind"]>(prompt: Prompt, kind: K) => prompt.steps.filter((step): step is Extract<Step, { kind: K }> => step.kind === kind);
/** Codex's usage in the model's non-overlapping counts. */
const counts = (usage: Json) => ({
	input: usage.input_tokens - usage.cached_input_tokens - usage.cache_write_input_tokens,
	cacheRead: usage.cached_input_tokens,
	cacheWrite: usage.cache_write_input_tokens,
	output: usage.output_tokens - usage.reasoning_output_tokens,
	reasoning: usage.reasoning_output_tokens,
	total: usage.total_tokens,
});

describe("parseRollout (pure)", () => {
	test("one shell call: one prompt, two responses with exact tokens, one tool whose id the first response asked for", () => {
		const f = fixture("codex-one-tool.rollout.jsonl");
		const { thread, prompts } = parseRollout(f.text);
		expect(thread).toMatchObject({ threadId: f.threadId, sessionId: f.threadId, cliVersion: "0.169.0", provider: "mock" });
		expect(prompts).toHaveLength(1);
		const [prompt] = prompts as [Prompt];
		const complete = payloads(f, "event_msg", "task_complete")[0]!;
		expect(prompt).toMatchObject({ id: f.turns[0]!.id, sessionId: f.threadId, text: "ONE: run echo hi", answer: "The command printed `hi`. Done." });
		expect(prompt.startMs).toBe(f.turns[0]!.startedAt);
		expect(prompt.endMs).toBe(complete.at);
		expect(prompt.aborted).toBeUndefined();
		expect(prompt.warning).toBeUndefined();
		expect(kinds(prompt)).toEqual(["llm", "tool", "llm"]);
		const [first, second] = stepsOf(prompt, "llm") as [Extract<Step, { kind: "llm" }>, Extract<Step, { kind: "llm" }>];
		const [tool] = stepsOf(prompt, "tool") as [Extract<Step, { kind: "tool" }>];
		expect([first.id, second.id]).toEqual(["resp_mock_1", "resp_mock_2"]);
		expect(stepsOf(prompt, "llm").map(step => step.usage)).toEqual(f.usages.map(counts));
		expect(first.usage).toEqual({ input: 1001, cacheRead: 200, cacheWrite: 0, output: 21, reasoning: 0, total: 1222 });
		expect(first.model).toBe("mock-model");
		expect(first.completionStartMs).toBe(prompt.startMs + f.turns[0]!.ttft!);
		// ChatML: the user's prompt in, a tool call out; the tool result in, the answer out
		expect(first.input).toEqual([{ role: "user", content: "ONE: run echo hi" }]);
		expect(first.output).toEqual({ role: "assistant", content: "", tool_calls: [{ id: "call_mock_1_0", type: "function", function: { name: "exec_command", arguments: '{"cmd":"echo hi"}' } }] });
		expect(tool).toMatchObject({ id: "call_mock_1_0", name: "exec_command", input: { cmd: "echo hi" }, isError: false, exitCode: 0 });
		expect(tool.output).toContain("Process exited with code 0");
		expect(tool.output).toContain("\nhi\n");
		expect(tool.metadata?.command).toEqual(["/bin/bash", "-lc", "echo hi"]);
		expect(tool.endMs).toBe(payloads(f, "response_item", "function_call_output")[0]!.at);
		expect(second.input).toEqual([{ role: "tool", tool_call_id: "call_mock_1_0", content: tool.output as string }]);
		expect(second.output).toEqual({ role: "assistant", content: "The command printed `hi`. Done." });
		expect(second.startMs).toBe(tool.endMs!);
		expect(prompt.endMetadata).toMatchObject({ responses: 2, durationMs: complete.duration_ms, ttftMs: complete.time_to_first_token_ms });
	});

	test("parallel calls: both in one response, paired by call id; the failing one is an error with its exit code", () => {
		const f = fixture("codex-two-tools.rollout.jsonl");
		const [prompt] = parseRollout(f.text).prompts as [Prompt];
		expect(kinds(prompt)).toEqual(["llm", "tool", "tool", "llm"]);
		const first = stepsOf(prompt, "llm")[0]!;
		const tools = stepsOf(prompt, "tool");
		expect(first.output.tool_calls?.map(call => call.id)).toEqual(tools.map(tool => tool.id));
		expect(tools.map(tool => [(tool.input as Json).cmd, tool.isError, tool.exitCode])).toEqual([
			["echo one", false, 0],
			["cat /nonexistent-file", true, 1],
		]);
		expect(tools[1]!.output).toContain("No such file or directory");
		expect(stepsOf(prompt, "llm")[1]!.input.map(message => [message.role, message.tool_call_id])).toEqual([
			["tool", "call_mock_1_0"],
			["tool", "call_mock_1_1"],
		]);
	});

	test("two turns: two prompts in order, one response each beyond the tool round, tokens add up to the rollout's", () => {
		const f = fixture("codex-two-turns.rollout.jsonl");
		const { prompts } = parseRollout(f.text);
		expect(prompts.map(prompt => [prompt.id, prompt.text, prompt.answer])).toEqual([
			[f.turns[0]!.id, "ONE: run echo hi", f.turns[0]!.last],
			[f.turns[1]!.id, "SECOND prompt: just answer", "Second answer from mock."],
		]);
		expect(prompts.map(kinds)).toEqual([["llm", "tool", "llm"], ["llm"]]);
		const llms = prompts.flatMap(prompt => stepsOf(prompt, "llm"));
		expect(llms.map(step => step.id)).toEqual(["resp_mock_1", "resp_mock_2", "resp_mock_3"]);
		expect(llms.reduce((sum, step) => sum + (step.usage?.total ?? 0), 0)).toBe(sumUsage(f.usages).total);
		expect(llms.map(step => step.usage)).toEqual(f.usages.map(counts));
	});

	test("subagents: the child names its parent thread and trace; the parent's spawn and wait tools name the child", () => {
		const parent = fixture("codex-subagent.parent.rollout.jsonl");
		const child = fixture("codex-subagent.child.rollout.jsonl");
		const parsedChild = parseRollout(child.text);
		expect(parsedChild.thread).toMatchObject({ threadId: child.threadId, sessionId: parent.threadId, parentThreadId: parent.threadId, nickname: "Sartre", depth: 1 });
		const [childPrompt] = parsedChild.prompts as [Prompt];
		expect(childPrompt.sessionId).toBe(parent.threadId);
		expect(childPrompt.metadata?.parentTurnId).toBe(parent.turns[0]!.id);
		expect(childPrompt.metadata?.parentTraceId).toMatch(/^[0-9a-f]{32}$/);
		const [parentPrompt] = parseRollout(parent.text).prompts as [Prompt];
		expect(kinds(parentPrompt)).toEqual(["llm", "tool", "llm", "tool", "llm"]);
		expect(stepsOf(parentPrompt, "tool").map(tool => [tool.name, tool.metadata?.namespace, tool.metadata?.childThreadIds])).toEqual([
			["spawn_agent", "multi_agent_v1", [child.threadId]],
			["wait_agent", "multi_agent_v1", [child.threadId]],
		]);
		expect(stepsOf(parentPrompt, "llm").map(step => step.usage?.total)).toEqual(parent.usages.map(usage => usage.total_tokens));
		expect(parentPrompt.endMetadata?.responses).toBe(3);
	});

	test("an unfinished turn is not a prompt until the caller says it ended (Stop hook), then it takes the hook's answer", () => {
		const f = fixture("codex-one-tool.rollout.jsonl");
		const beforeComplete = f.text.split("\n").filter(row => row && !row.includes('"task_complete"')).join("\n") + "\n";
		expect(parseRollout(beforeComplete).prompts).toEqual([]);
		const [prompt] = parseRollout(beforeComplete, { turnId: f.turns[0]!.id, lastMessage: "from the hook" }).prompts as [Prompt];
		expect(prompt.answer).toBe("from the hook");
		expect(prompt.warning).toBeUndefined();
		expect(kinds(prompt)).toEqual(["llm", "tool", "llm"]);
	});

	test("errors, compactions, reasoning, an aborted turn, a call without result and a result without call", () => {
		const f = fixture("codex-one-tool.rollout.jsonl");
		const rows = f.text.split("\n").filter(Boolean);
		const startIndex = rows.findIndex(row => row.includes('"task_started"'));
		const at = (ms: number) => new Date(f.turns[0]!.startedAt + ms).toISOString();
		const turn = f.turns[0]!.id;
		const extra = [
			{ timestamp: at(10), type: "response_item", payload: { type: "reasoning", summary: [{ type: "summary_text", text: "thinking it over" }] } },
			{ timestamp: at(11), type: "response_item", payload: { type: "function_call", name: "exec_command", arguments: '{"cmd":"sleep 99"}', call_id: "call_never" } },
			{ timestamp: at(12), type: "event_msg", payload: { type: "stream_error", message: "reconnecting 1/5" } },
			{ timestamp: at(13), type: "event_msg", payload: { type: "error", message: "boom" } },
			{ timestamp: at(14), type: "compacted", payload: { message: "summary" } },
			{ timestamp: at(15), type: "response_item", payload: { type: "function_call_output", call_id: "call_orphan", output: "late" } },
			{ timestamp: at(20), type: "event_msg", payload: { type: "turn_aborted", turn_id: turn, reason: "interrupted" } },
		].map(line => JSON.stringify(line));
		const text = [...rows.slice(0, startIndex + 1), ...extra].join("\n") + "\n";
		const [prompt] = parseRollout(text).prompts as [Prompt];
		expect(prompt).toMatchObject({ aborted: true, warning: "turn aborted: interrupted", endMs: f.turns[0]!.startedAt + 20 });
		expect(kinds(prompt)).toEqual(["llm", "tool", "event", "event", "compaction", "tool"]);
		const llm = stepsOf(prompt, "llm")[0]!;
		expect(llm.output).toMatchObject({ role: "assistant", content: "", reasoning: "thinking it over", tool_calls: [{ id: "call_never" }] });
		expect(llm.usage).toBeUndefined();
		const [never, orphan] = stepsOf(prompt, "tool") as [Extract<Step, { kind: "tool" }>, Extract<Step, { kind: "tool" }>];
		expect(never).toMatchObject({ id: "call_never", input: { cmd: "sleep 99" } });
		expect(never.endMs).toBeUndefined();
		expect(orphan).toMatchObject({ id: "call_orphan", name: "tool", output: "late", isError: false, endMs: f.turns[0]!.startedAt + 15 });
		expect(stepsOf(prompt, "event").map(event => [event.name, event.level, event.message])).toEqual([
			["stream error", "WARNING", "reconnecting 1/5"],
			["error", "ERROR", "boom"],
		]);
		expect(stepsOf(prompt, "compaction")[0]).toMatchObject({ startMs: f.turns[0]!.startedAt + 14, endMs: f.turns[0]!.startedAt + 14 });
	});

	test("rollouts without token_usage_record: a response closes at each token_count's last usage", () => {
		const f = fixture("codex-one-tool.rollout.jsonl");
		const rows = f.text.split("\n").filter(row => row && JSON.parse(row).type !== "token_usage_record");
		const [prompt] = parseRollout(rows.join("\n") + "\n").prompts as [Prompt];
		const tokenCounts = payloads(f, "event_msg", "token_count").filter(count => count.info?.last_token_usage);
		const llms = stepsOf(prompt, "llm");
		expect(llms.map(step => step.id)).toEqual(["0", "1"]);
		expect(llms.map(step => step.usage)).toEqual(tokenCounts.map(count => counts(count.info.last_token_usage)));
		expect(prompt.endMetadata?.turnUsage).toEqual(tokenCounts.at(-1)!.info.total_token_usage);
	});
});
