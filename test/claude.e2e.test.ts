// Claude Code end to end: the real `claude -p` (@anthropic-ai/claude-code, pinned) headless against the mock
// Anthropic API, with the hooks `bun langfuse.ts claude-config` prints wired in the project's settings, and the
// local receiver as Langfuse. Asserts that what arrived equals the transcripts, and that a failing or
// misconfigured hook never changes Claude Code's output, exit code or number of API calls.
// One real-host run at a time. LANGFUSE_TS picks the file under test; LF_CLAUDE_BIN another claude binary.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type ClaudeRunResult, runClaude } from "./support/hosts.ts";
import { type MockAnthropic, startMockAnthropic } from "./support/mock-anthropic.ts";
import type { ReceivedSpan, Receiver } from "./support/receiver.ts";
import { useReceiver, useTempDir } from "./support/rig.ts";
import { attr, io, json, meta, sum, type } from "./support/spans.ts";

const LF = process.env.LANGFUSE_TS ?? new URL("../langfuse.ts", import.meta.url).pathname;
const BUN = process.execPath;
type Json = Record<string, any>;

let mock: MockAnthropic;
let receiver: Receiver;
let spoolRoot: string;
let settings: Json;
const cleanups: (() => void)[] = [];

useReceiver(started => (receiver = started));
useTempDir("lf-claude-e2e-spool-", dir => (spoolRoot = dir), "all");
beforeAll(async () => {
	mock = await startMockAnthropic();
	// the hooks exactly as a user gets them
	const config = Bun.spawnSync([BUN, LF, "claude-config"], { env: { PATH: process.env.PATH ?? "", HOME: spoolRoot } });
	settings = JSON.parse(config.stdout.toString());
});
afterAll(async () => {
	for (const cleanup of cleanups) cleanup();
	mock.close();
});

function langfuseEnv(name: string): Record<string, string> {
	return { LANGFUSE_PUBLIC_KEY: "pk-lf-e2e", LANGFUSE_SECRET_KEY: "sk-lf-e2e", LANGFUSE_HOST: receiver.url, LANGFUSE_SPOOL_DIR: join(spoolRoot, name) };
}

async function claude(options: Omit<Parameters<typeof runClaude>[0], "mockUrl">): Promise<ClaudeRunResult & { calls: string[] }> {
	const before = mock.messageCalls().length;
	const result = await runClaude({ settings, timeoutMs: 90_000, ...options, mockUrl: mock.url });
	cleanups.push(result.cleanup);
	return { ...result, calls: mock.messageCalls().slice(before).map(call => call.kind) };
}

const readJsonl = (file: string): Json[] =>
	readFileSync(file, "utf8")
		.split("\n")
		.filter(Boolean)
		.map(line => JSON.parse(line));

/** What the transcripts say: each API call once (by message.id), made in this session (not copied by a fork). */
function transcriptCalls(run: ClaudeRunResult, sessionId: string): { input: number; output: number; ids: Set<string>; tools: Set<string> } {
	const files = [join(run.projectDir, `${sessionId}.jsonl`), ...run.subagentFiles.filter(file => file.includes(`/${sessionId}/`))];
	const usage = new Map<string, Json>();
	const tools = new Set<string>();
	for (const file of files.filter(existsSync)) {
		for (const line of readJsonl(file)) {
			if (line.type !== "assistant" || line.message?.model === "<synthetic>" || !line.message?.id) continue;
			if (line.requestSessionId && line.requestSessionId !== sessionId) continue;
			usage.set(line.message.id, line.message.usage);
			for (const block of line.message.content ?? []) if (block.type === "tool_use") tools.add(block.id);
		}
	}
	const u = [...usage.values()];
	return {
		input: sum(u.map(x => x.input_tokens + x.cache_read_input_tokens + x.cache_creation_input_tokens)),
		output: sum(u.map(x => x.output_tokens)),
		ids: new Set(usage.keys()),
		tools,
	};
}

const inSession = (sid: string | undefined) => receiver.spans.filter(span => attr(span, "session.id") === sid);
const latest = (spans: ReceivedSpan[]) => [...new Map(spans.map(span => [span.spanId, span])).values()];
const ofType = (spans: ReceivedSpan[], kind: string) => latest(spans).filter(span => type(span) === kind);
const roots = (spans: ReceivedSpan[]) => latest(spans).filter(span => !span.parentSpanId);
/** Langfuse's rule: input = keys containing "input", output = keys containing "output". */
const tokens = (generations: ReceivedSpan[], part: "input" | "output") =>
	sum(generations.flatMap(g => Object.entries(json(g, "langfuse.observation.usage_details") as Record<string, number>).filter(([key]) => key !== "total" && key.includes(part)).map(([, value]) => value)));

/** Nothing sent twice: one arrival per span id and end time. */
function sentOnce(spans: ReceivedSpan[]): void {
	const counts = new Map<string, number>();
	for (const span of spans) counts.set(`${span.spanId}@${span.endNs}`, (counts.get(`${span.spanId}@${span.endNs}`) ?? 0) + 1);
	expect([...counts.entries()].filter(([, count]) => count > 1)).toEqual([]);
}

/** The session's traces equal its transcript: generations, their token totals, tools. */
function matchesTranscript(run: ClaudeRunResult, sessionId: string): ReceivedSpan[] {
	const spans = inSession(sessionId);
	sentOnce(spans);
	const expected = transcriptCalls(run, sessionId);
	const generations = ofType(spans, "generation");
	expect(generations.map(g => meta(g, "messageId")).sort()).toEqual([...expected.ids].sort());
	expect(tokens(generations, "input")).toBe(expected.input);
	expect(tokens(generations, "output")).toBe(expected.output);
	for (const g of generations) expect(attr(g, "langfuse.observation.cost_details")).toBeUndefined();
	expect(ofType(spans, "tool").map(tool => meta(tool, "toolUseId")).sort()).toEqual([...expected.tools].sort());
	return spans;
}

describe("claude -p traced by claude-hook", () => {
	let first: ClaudeRunResult & { calls: string[] };
	const env = () => langfuseEnv("main");

	test("one tool call: one trace in the session, prompt → answer, generations and tool equal the transcript", async () => {
		first = await claude({ prompt: "Run a shell command that prints hi.", env: env() });
		expect(first.code).toBe(0);
		expect(first.stdout.trim()).toBe("Done. The tool said: hi");
		expect(first.calls.filter(kind => kind !== "side")).toEqual(["bash", "final"]);
		// the Stop hook ran inside claude -p: the trace is there when it exits
		const spans = matchesTranscript(first, first.sessionId!);
		const traces = roots(spans);
		expect(traces.length).toBe(1);
		expect(io(traces[0]!, "langfuse.trace.input")).toBe("Run a shell command that prints hi.");
		expect(io(traces[0]!, "langfuse.trace.output")).toBe("Done. The tool said: hi");
		const tools = ofType(spans, "tool");
		expect(tools.map(tool => [tool.name, io(tool, "langfuse.observation.output")])).toEqual([["Bash", "hi"]]);
		expect(ofType(spans, "generation").length).toBe(2);
		const input = io(ofType(spans, "generation")[0]!, "langfuse.observation.input");
		expect(input.tools.map((tool: Json) => tool.function.name)).toContain("Bash");
	}, 120_000);

	test("--resume: the second prompt is a second trace in the same session; the first is not sent again", async () => {
		const run = await claude({ prompt: "Now run echo hi yourself.", env: env(), home: first.home, cwd: first.cwd, resume: first.sessionId });
		expect(run.code).toBe(0);
		expect(run.sessionId).toBe(first.sessionId);
		const spans = matchesTranscript(run, first.sessionId!);
		expect(roots(spans).map(span => io(span, "langfuse.trace.input"))).toEqual(["Run a shell command that prints hi.", "Now run echo hi yourself."]);
	}, 120_000);

	test("fork (--resume --fork-session): only the new prompt, in the fork's session; no span shared with the parent", async () => {
		const run = await claude({ prompt: "FAIL in the fork.", env: env(), home: first.home, cwd: first.cwd, resume: first.sessionId, forkSession: true });
		expect(run.code).toBe(0);
		expect(run.sessionId).not.toBe(first.sessionId);
		const spans = matchesTranscript(run, run.sessionId!);
		expect(roots(spans).map(span => io(span, "langfuse.trace.input"))).toEqual(["FAIL in the fork."]);
		const tool = ofType(spans, "tool")[0]!;
		expect(attr(tool, "langfuse.observation.level")).toBe("ERROR");
		const parentIds = new Set(inSession(first.sessionId).map(span => span.spanId));
		expect(spans.filter(span => parentIds.has(span.spanId))).toEqual([]);
		// the parent session got nothing new
		expect(roots(inSession(first.sessionId)).length).toBe(2);
	}, 120_000);

	test("a subagent: its generations and tools under the parent's Agent call, in the parent's trace and session", async () => {
		const run = await claude({ prompt: "SPAWN a subagent that runs echo hi.", env: env() });
		expect(run.code).toBe(0);
		expect(run.subagentFiles.length).toBe(1);
		const spans = matchesTranscript(run, run.sessionId!);
		expect(roots(spans).length).toBe(1);
		const agentTool = ofType(spans, "tool").find(span => span.name === "Agent")!;
		const agent = ofType(spans, "agent").find(span => span.parentSpanId === agentTool.spanId)!;
		expect(agent.traceId).toBe(agentTool.traceId);
		expect(ofType(spans, "generation").filter(g => g.parentSpanId === agent.spanId).length).toBe(2);
		expect(ofType(spans, "tool").filter(tool => tool.parentSpanId === agent.spanId).map(tool => tool.name)).toEqual(["Bash"]);
	}, 120_000);

	test("a background subagent arrives on a later hook run, with its parent prompt, once", async () => {
		mock.setOptions({ agentBackground: true });
		try {
			const run = await claude({ prompt: "SPAWN a background subagent that runs echo hi.", env: env() });
			expect(run.code).toBe(0);
			const spans = matchesTranscript(run, run.sessionId!);
			const traces = roots(spans).map(span => String(io(span, "langfuse.trace.input")).slice(0, 19));
			expect(traces[0]).toBe("SPAWN a background ");
			const agentTool = ofType(spans, "tool").find(span => span.name === "Agent")!;
			expect(String(io(agentTool, "langfuse.observation.output"))).toStartWith("Async agent launched");
			expect(ofType(spans, "agent").filter(span => span.parentSpanId === agentTool.spanId).length).toBe(1);
		} finally {
			mock.setOptions({ agentBackground: false });
		}
	}, 120_000);
});

describe("a failing or misconfigured hook never changes Claude Code's output or exit code, and never loops", () => {
	const prompt = "Run a shell command that prints hi.";
	const unknownCommand = (): Json => JSON.parse(JSON.stringify(settings).replaceAll("claude-hook", "claude-hookz"));
	const cases: [string, () => { env: Record<string, string>; settings?: Json }][] = [
		["receiver down", () => ({ env: { ...langfuseEnv("down"), LANGFUSE_HOST: "http://127.0.0.1:9" } })],
		["bad keys", () => ({ env: { ...langfuseEnv("badkeys"), LANGFUSE_PUBLIC_KEY: "pk-wrong", LANGFUSE_SECRET_KEY: "wrong" } })],
		["garbage config", () => ({ env: { ...langfuseEnv("garbage"), LANGFUSE_HOST: "not a url", LANGFUSE_SAMPLE_RATE: "lots", LANGFUSE_FLUSH_MS: "-1", LANGFUSE_SPOOL_DIR: "/dev/null/spool" } })],
		["unknown subcommand", () => ({ env: langfuseEnv("unknown"), settings: unknownCommand() })],
	];
	for (const [name, setup] of cases) {
		test(name, async () => {
			const { env, settings: own } = setup();
			const run = await claude({ prompt, env, ...(own && { settings: own }) });
			expect(run.code).toBe(0);
			expect(run.stdout.trim()).toBe("Done. The tool said: hi");
			expect(run.stderr).toBe("");
			// exactly the two calls of the turn: no Stop hook made Claude go on
			expect(run.calls.filter(kind => kind !== "side")).toEqual(["bash", "final"]);
			expect(receiver.spans.filter(span => attr(span, "session.id") === run.sessionId)).toEqual([]);
		}, 120_000);
	}
});
