// Unit tests of the Claude Code transcript parser (langfuse.ts §7.4, issue 14) on transcripts of the real
// `claude -p` 2.1.332: the probe's sample (test/fixtures/claude-probe) and our own recordings
// (test/support/record-claude.ts → test/fixtures/claude-{tool,subagent-resume-fork,background}).
// mock.jsonl in each fixture lists the API calls the mock answered, with the usage it reported.
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import langfuse, { type Internals } from "../langfuse.ts";

const { parseClaudeTranscript, nextClaudeCursor } = (langfuse as unknown as { internals: Internals }).internals;
type RecordedPrompt = ReturnType<Internals["parseClaudeTranscript"]>[number];
type Step = RecordedPrompt["steps"][number];
type LlmStep = Extract<Step, { kind: "llm" }>;
type ToolStep = Extract<Step, { kind: "tool" }>;
type ClaudeSubagentFile = NonNullable<NonNullable<Parameters<Internals["parseClaudeTranscript"]>[1]>["subagents"]>[number];

const FIX = join(import.meta.dir, "fixtures");
const PROBE = { dir: "claude-probe", sid: "4e5b83e2-fd59-4b4c-ae97-458448df205d" };
const TOOL = { dir: "claude-tool", sid: "450b2925-bb80-4be5-918d-19ed1c2d49ae" };
const SRF = { dir: "claude-subagent-resume-fork", sid: "507b4785-438c-4d25-8de2-35f0a8130b29" };
const FORK = { dir: "claude-subagent-resume-fork", sid: "a20d8bd6-71d3-4e9f-8dd5-152b93a121f2" };
const BG = { dir: "claude-background", sid: "c8bb4037-dc37-40af-9670-ef955af1796f" };
type Fx = { dir: string; sid: string };

const text = (f: Fx) => readFileSync(join(FIX, f.dir, `${f.sid}.jsonl`), "utf8");
const lines = (f: Fx) => text(f).split("\n");
function subagents(f: Fx): ClaudeSubagentFile[] {
	const d = join(FIX, f.dir, f.sid, "subagents");
	if (!existsSync(d)) return [];
	return readdirSync(d)
		.filter(n => n.endsWith(".jsonl"))
		.map(n => {
			const agentId = n.slice("agent-".length, -".jsonl".length);
			const meta = join(d, `agent-${agentId}.meta.json`);
			return { agentId, lines: readFileSync(join(d, n), "utf8").split("\n"), meta: existsSync(meta) ? JSON.parse(readFileSync(meta, "utf8")) : undefined };
		});
}
type MockCall = { n: number; kind: string; messageId: string; toolUseId?: string; usage: { input_tokens: number; output_tokens: number; cache_read_input_tokens: number; cache_creation_input_tokens: number; cache_creation: { ephemeral_5m_input_tokens: number; ephemeral_1h_input_tokens: number } } };
const mockCalls = (f: Fx): MockCall[] =>
	readFileSync(join(FIX, f.dir, "mock.jsonl"), "utf8")
		.split("\n")
		.filter(Boolean)
		.map(l => JSON.parse(l) as MockCall);

const llms = (p: RecordedPrompt): LlmStep[] => p.steps.filter((s): s is LlmStep => s.kind === "llm");
const tools = (p: RecordedPrompt): ToolStep[] => p.steps.filter((s): s is ToolStep => s.kind === "tool");
/** every generation, subagents included */
function allLlms(ps: RecordedPrompt[]): LlmStep[] {
	return ps.flatMap(p => [...llms(p), ...tools(p).flatMap(t => allLlms(t.subagent?.prompts ?? []))]);
}
/** Langfuse's rule: input total = input + cache read + cache write */
const inputTotal = (g: LlmStep) => (g.usage?.input ?? 0) + (g.usage?.cacheRead ?? 0) + (g.usage?.cacheWrite ?? 0);
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

describe("one tool call (claude-tool)", () => {
	const ps = parseClaudeTranscript(lines(TOOL));
	test("one prompt, two generations, one Bash tool, answer", () => {
		expect(ps.length).toBe(1);
		const p = ps[0];
		expect(p.sessionId).toBe(TOOL.sid);
		expect(p.text).toBe("Run a shell command that prints hi, then tell me what it printed.");
		expect(p.answer).toBe("Done. The tool said: hi");
		expect(p.steps.map(s => s.kind)).toEqual(["llm", "tool", "llm"]);
		const [t] = tools(p);
		expect(t).toMatchObject({ name: "Bash", input: { command: "echo hi", description: "Print hi" }, output: "hi", isError: false });
		expect(t.endMs!).toBeGreaterThan(t.startMs);
		expect(p.aborted).toBeUndefined();
	});
	test("usage counted once per message.id, equal to what the mock sent; 5m/1h split; no cost", () => {
		const calls = mockCalls(TOOL);
		const gens = llms(ps[0]);
		expect(gens.map(g => g.id)).toEqual(calls.map(c => c.messageId));
		for (const [i, g] of gens.entries()) {
			const u = calls[i].usage;
			expect(g.usage).toEqual({
				input: u.input_tokens,
				output: u.output_tokens,
				cacheRead: u.cache_read_input_tokens,
				cacheWrite: u.cache_creation_input_tokens,
				cacheWrite5m: u.cache_creation.ephemeral_5m_input_tokens,
				cacheWrite1h: u.cache_creation.ephemeral_1h_input_tokens,
				total: u.input_tokens + u.output_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens,
			});
			expect(g.costUsd).toBeUndefined();
		}
		// (11+2001+1001) + (12+2002+1002)
		expect(sum(gens.map(inputTotal))).toBe(6029);
		expect(sum(gens.map(g => g.usage?.output ?? 0))).toBe(43);
		expect(gens[0].usage?.cacheWrite5m).toBe(300);
		expect(gens[0].usage?.cacheWrite1h).toBe(701);
	});
	test("generation: model, start from api-request, tools and ChatML input/output", () => {
		const all = lines(TOOL).filter(Boolean).map(l => JSON.parse(l) as Record<string, any>);
		const reqs = all.filter(l => l.type === "api-request");
		const [g1, g2] = llms(ps[0]);
		expect(g1.model).toBe("claude-opus-5-5");
		expect(g1.provider).toBe("anthropic");
		expect(g1.startMs).toBe(Date.parse(reqs[0].timestamp));
		expect(g2.startMs).toBe(Date.parse(reqs[1].timestamp));
		expect(g1.parameters).toEqual({ max_tokens: 128000, thinking: "adaptive", effort: "medium" });
		expect(g1.stopReason).toBe("tool_use");
		expect(g2.stopReason).toBe("end_turn");
		expect(g1.tools?.map(t => t.function.name)).toContain("Bash");
		expect(g1.tools?.find(t => t.function.name === "Bash")?.function.parameters).toMatchObject({ type: "object" });
		expect(g1.input[0].role).toBe("system");
		expect(g1.input.at(-1)).toEqual({ role: "user", content: "Run a shell command that prints hi, then tell me what it printed." });
		const toolId = tools(ps[0])[0].id;
		expect(g1.output).toEqual({
			role: "assistant",
			content: "I'll run the command.",
			tool_calls: [{ id: toolId, type: "function", function: { name: "Bash", arguments: JSON.stringify({ command: "echo hi", description: "Print hi" }) } }],
		});
		expect(g2.input.map(m => m.role)).toEqual(["system", "user", "assistant", "tool"]);
		expect(g2.input.at(-1)).toEqual({ role: "tool", tool_call_id: toolId, content: "hi" });
		expect(g2.output).toEqual({ role: "assistant", content: "Done. The tool said: hi" });
	});
	test("at Stop the transcript holds the finished prompt; the cursor then skips everything", () => {
		const hooks = readFileSync(join(FIX, TOOL.dir, "hooks.jsonl"), "utf8").split("\n").filter(Boolean).map(l => JSON.parse(l) as Record<string, any>);
		const seen: number = hooks.find(h => h.stdin.hook_event_name === "Stop")!.seen.transcript_path;
		const atStop = lines(TOOL).slice(0, seen).concat([""]);
		const got = parseClaudeTranscript(atStop);
		expect(got.length).toBe(1);
		expect(got[0].id).toBe(ps[0].id);
		const cur = nextClaudeCursor(atStop, 0);
		expect(cur).toEqual({ offset: Buffer.byteLength(atStop.join("\n")), done: [] });
		// SessionEnd: the rest (bookkeeping lines) holds no prompt
		const rest = text(TOOL).slice(cur.offset).split("\n");
		expect(parseClaudeTranscript(rest, { sessionId: TOOL.sid })).toEqual([]);
	});
	test("a half-written last line keeps the prompt open", () => {
		const ls = lines(TOOL).filter(Boolean);
		const lastAssistant = ls.length - 1 - [...ls].reverse().findIndex(l => l.includes('"type":"assistant"'));
		const partial = ls.slice(0, lastAssistant).concat([ls[lastAssistant].slice(0, 100)]);
		expect(parseClaudeTranscript(partial)).toEqual([]);
		const cur = nextClaudeCursor(partial, 0);
		const promptLine = ls.findIndex(l => l.includes('"type":"user"'));
		expect(cur.offset).toBe(Buffer.byteLength(ls.slice(0, promptLine).join("\n")) + 1);
		// SessionEnd / import (final): an open prompt is sent as aborted
		const fin = parseClaudeTranscript(ls.slice(0, lastAssistant - 0).concat([""]), { final: true });
		expect(fin.length).toBe(1);
		expect(fin[0].aborted).toBe(true);
	});
});

describe("subagent + resume (probe sample and our recording)", () => {
	for (const f of [PROBE, SRF]) {
		const ps = parseClaudeTranscript(lines(f), { subagents: subagents(f) });
		test(`${f.dir}: two prompts; the subagent hangs off the Agent call`, () => {
			expect(ps.length).toBe(2);
			const [p1, p2] = ps;
			expect(p1.text).toBe("SPAWN a subagent that runs echo hi, then tell me what it said.");
			expect(p2.text).toBe("Now run echo hi yourself.");
			expect(p1.steps.map(s => s.kind)).toEqual(["llm", "tool", "llm"]);
			const agent = tools(p1)[0];
			expect(agent.name).toBe("Agent");
			const meta = subagents(f)[0].meta!;
			expect(agent.id).toBe(meta.toolUseId!);
			expect(agent.subagent?.sessionId).toBe(f.sid);
			expect(agent.subagent?.prompts.length).toBe(1);
			const child = agent.subagent!.prompts[0];
			expect(child.text).toBe("Run the shell command `echo hi` with Bash and report what it printed.");
			expect(child.steps.map(s => s.kind)).toEqual(["llm", "tool", "llm"]);
			expect(tools(child)[0]).toMatchObject({ name: "Bash", output: "hi", isError: false });
			expect(child.answer).toBe("Done. The tool said: hi");
			expect(child.metadata?.agentId).toBe(subagents(f)[0].agentId);
			// call order: main 1, subagent 2 and 3, main 4, then after --resume main 1 and 2 of a new mock
			const ids = allLlms(ps).map(g => g.id.replace(/^msg_mock_[a-z0-9]+_/, ""));
			expect(ids).toEqual(["1", "4", "2", "3", "1", "2"]);
			expect(p2.steps.map(s => s.kind)).toEqual(["llm", "tool", "llm"]);
			// the resumed turn's input carries the first turn's history
			expect(llms(p2)[0].input.map(m => m.role)).toEqual(["system", "user", "assistant", "tool", "assistant", "user"]);
		});
		test(`${f.dir}: token totals (Langfuse's rule) equal the mock's usage, each call once`, () => {
			const gens = allLlms(ps);
			expect(gens.length).toBe(6);
			expect(new Set(gens.map(g => g.id)).size).toBe(6);
			// inputs per call n: 10+n + 2000+n + 1000+n; turn 1: n=1..4, turn 2: n=1..2
			expect(sum(gens.map(inputTotal))).toBe(3 * (1 + 2 + 3 + 4 + 1 + 2) + 6 * 3010);
			expect(sum(gens.map(g => g.usage?.output ?? 0))).toBe(6 * 20 + 13);
			if (f === SRF) {
				const calls = mockCalls(f).filter(c => gens.some(g => g.id === c.messageId));
				expect(calls.length).toBe(6);
				expect(sum(gens.map(g => g.usage?.cacheWrite1h ?? 0))).toBe(sum(calls.map(c => c.usage.cache_creation.ephemeral_1h_input_tokens)));
				expect(sum(gens.map(g => g.usage?.cacheWrite5m ?? 0))).toBe(6 * 300);
			} else {
				// the probe's mock wrote everything as 1-hour cache
				expect(sum(gens.map(g => g.usage?.cacheWrite5m ?? 0))).toBe(0);
				expect(sum(gens.map(g => g.usage?.cacheWrite1h ?? 0))).toBe(6 * 1000 + 13);
			}
		});
	}
	test("a foreground agent's prompt is complete even without its subagent file (the tool result says completed)", () => {
		const ps = parseClaudeTranscript(lines(PROBE));
		expect(ps.length).toBe(2);
		expect(tools(ps[0])[0].subagent).toBeUndefined();
	});
	test("resume: the first run's cursor, then only the resumed turn is new", () => {
		const all = text(SRF);
		const hooks = readFileSync(join(FIX, SRF.dir, "hooks.jsonl"), "utf8").split("\n").filter(Boolean).map(l => JSON.parse(l) as Record<string, any>);
		const ends = hooks.filter(h => h.stdin.hook_event_name === "SessionEnd" && h.stdin.session_id === SRF.sid).map(h => h.seen.transcript_path as number);
		const run1 = all.split("\n").slice(0, ends[0]).concat([""]);
		const first = parseClaudeTranscript(run1, { subagents: subagents(SRF) });
		expect(first.map(p => p.text)).toEqual(["SPAWN a subagent that runs echo hi, then tell me what it said."]);
		const cur = nextClaudeCursor(run1, 0, { subagents: subagents(SRF) });
		expect(cur.offset).toBe(Buffer.byteLength(run1.join("\n")));
		const next = parseClaudeTranscript(Buffer.from(all).subarray(cur.offset).toString("utf8").split("\n"), { sessionId: SRF.sid, subagents: subagents(SRF), done: cur.done });
		expect(next.map(p => p.text)).toEqual(["Now run echo hi yourself."]);
		expect(next[0].steps.map(s => s.kind)).toEqual(["llm", "tool", "llm"]);
		// read from the cursor alone, the first turn's history and the shape (system prompt, tools) are missing:
		// Claude Code writes each api-request-shape once per file, so the resumed calls point at run 1's shape
		expect(llms(next[0])[0].input.map(m => m.role)).toEqual(["user"]);
		expect(llms(next[0])[0].tools).toBeUndefined();
		// with the earlier lines as context, both come back, and still only the new prompt is returned
		const context = Buffer.from(all).subarray(0, cur.offset).toString("utf8").split("\n").slice(0, -1);
		const withCtx = parseClaudeTranscript(Buffer.from(all).subarray(cur.offset).toString("utf8").split("\n"), { sessionId: SRF.sid, subagents: subagents(SRF), done: cur.done, context });
		expect(withCtx.map(p => p.id)).toEqual(next.map(p => p.id));
		expect(llms(withCtx[0])[0].input.map(m => m.role)).toEqual(["system", "user", "assistant", "tool", "assistant", "user"]);
		expect(llms(withCtx[0])[0].tools?.length).toBe(12);
		// shape lines alone are enough for the tools
		const shapesOnly = context.filter(l => l.includes('"api-request-shape"'));
		const withShapes = parseClaudeTranscript(Buffer.from(all).subarray(cur.offset).toString("utf8").split("\n"), { sessionId: SRF.sid, done: cur.done, context: shapesOnly });
		expect(llms(withShapes[0])[0].tools?.length).toBe(12);
		expect(nextClaudeCursor(Buffer.from(all).subarray(cur.offset).toString("utf8").split("\n"), cur.offset, { sessionId: SRF.sid, subagents: subagents(SRF), context })).toEqual({ offset: Buffer.byteLength(all), done: [] });
	});
});

describe("fork (--resume --fork-session)", () => {
	const ps = parseClaudeTranscript(lines(FORK));
	const parent = parseClaudeTranscript(lines(SRF), { subagents: subagents(SRF) });
	test("copied history is skipped: one new prompt under the new session id", () => {
		expect(ps.length).toBe(1);
		expect(ps[0].sessionId).toBe(FORK.sid);
		expect(ps[0].text).toBe("THINK then FAIL: read the missing file.");
		const parentIds = new Set([...parent.map(p => p.id), ...allLlms(parent).map(g => g.id)]);
		for (const id of [ps[0].id, ...allLlms(ps).map(g => g.id), ...tools(ps[0]).map(t => t.id)]) expect(parentIds.has(id)).toBe(false);
		// the cursor covers the copied prompts too
		expect(nextClaudeCursor(lines(FORK), 0).offset).toBe(Buffer.byteLength(text(FORK)));
	});
	test("the failing tool is an ERROR; thinking lands in reasoning; history comes along as input", () => {
		const p = ps[0];
		expect(p.steps.map(s => s.kind)).toEqual(["llm", "tool", "llm"]);
		const t = tools(p)[0];
		expect(t.name).toBe("Bash");
		expect(t.isError).toBe(true);
		expect(String(t.output)).toContain("No such file or directory");
		const [g1, g2] = llms(p);
		expect(g1.output.reasoning).toBe("Let me think about this.");
		expect(g1.output.content).toBe("I'll run the command.");
		// copied turns (2 prompts) + this prompt: system, 2×(user, assistant, tool, assistant), user
		expect(g1.input.length).toBe(10);
		expect(g2.input.at(-1)).toMatchObject({ role: "tool", tool_call_id: t.id });
		expect(sum(llms(p).map(inputTotal))).toBe(6029);
	});
});

test("thinking tokens stay in output (Anthropic bills them as output; Langfuse prices no reasoning key for Claude), counted in metadata", () => {
	// as the mock reports them with THINK since this fixture was recorded: 5 of 21 output tokens are thinking
	const ls = lines(FORK).map(l => (l.includes('"thinking_tokens":0') && l.includes("_1\"") && l.includes('"type":"assistant"') && l.includes(FORK.sid) ? l.replaceAll('"thinking_tokens":0', '"thinking_tokens":5') : l));
	const g = llms(parseClaudeTranscript(ls)[0])[0];
	expect(g.usage).toMatchObject({ input: 11, output: 21, total: 11 + 21 + 2001 + 1001 });
	expect(g.usage?.reasoning).toBeUndefined();
	expect(g.metadata?.thinkingTokens).toBe(5);
});

describe("background subagent + <task-notification> turn", () => {
	const subs = subagents(BG);
	const hooks = readFileSync(join(FIX, BG.dir, "hooks.jsonl"), "utf8").split("\n").filter(Boolean).map(l => JSON.parse(l) as Record<string, any>);
	test("Claude Code writes the subagent's meta file only after SubagentStop; Stop lists the agent as running", () => {
		const stop1 = hooks.find(h => h.stdin.hook_event_name === "Stop")!;
		expect(stop1.subagentsFinished).toEqual({});
		expect(stop1.stdin.background_tasks.map((t: Record<string, unknown>) => t.status)).toEqual(["running"]);
		const subStop = hooks.find(h => h.stdin.hook_event_name === "SubagentStop")!;
		expect(subStop.subagentsFinished).toEqual({});
		expect(hooks.filter(h => h.stdin.hook_event_name === "Stop").at(-1)!.subagentsFinished).toEqual({ [`agent-${subs[0].agentId}.meta.json`]: true });
	});
	test("at the first Stop the subagent is not finished: nothing sent, cursor stays at the prompt", () => {
		const stop1: number = hooks.find(h => h.stdin.hook_event_name === "Stop")!.seen.transcript_path;
		const atStop = lines(BG).slice(0, stop1).concat([""]);
		// as at that Stop: the subagent transcript exists, its meta file does not yet
		const running = subs.map(s => ({ agentId: s.agentId, lines: s.lines }));
		expect(parseClaudeTranscript(atStop, { subagents: running })).toEqual([]);
		const cur = nextClaudeCursor(atStop, 0, { subagents: running });
		const promptLine = atStop.findIndex(l => l.includes('"type":"user"'));
		expect(cur).toEqual({ offset: Buffer.byteLength(atStop.slice(0, promptLine).join("\n")) + 1, done: [] });
	});
	test("later: the background prompt with its subagent, and the notification turn", () => {
		const ps = parseClaudeTranscript(lines(BG), { subagents: subs });
		expect(ps.map(p => p.text.slice(0, 19))).toEqual(["SPAWN a background ", "<task-notification>"]);
		const agent = tools(ps[0])[0];
		expect(agent.name).toBe("Agent");
		expect(String(agent.output)).toStartWith("Async agent launched");
		expect(agent.subagent?.prompts.length).toBe(1);
		expect(tools(agent.subagent!.prompts[0]).map(t => t.name)).toEqual(["Bash"]);
		// the prompt lasts until its background child ended
		expect(ps[0].endMs).toBe(Math.max(ps[0].endMs, agent.subagent!.prompts[0].endMs));
		expect(ps[1].answer).toBe("Noted: the background agent finished.");
		const gens = allLlms(ps);
		expect(gens.length).toBe(5);
		expect(sum(gens.map(inputTotal))).toBe(sum(mockCalls(BG).map(c => c.usage.input_tokens + c.usage.cache_read_input_tokens + c.usage.cache_creation_input_tokens)));
	});
	test("SubagentStop (meta not written yet) may declare the agent finished", () => {
		const subStop: number = hooks.find(h => h.stdin.hook_event_name === "SubagentStop")!.seen.transcript_path;
		const at = lines(BG).slice(0, subStop).concat([""]);
		const ps = parseClaudeTranscript(at, { subagents: subs.map(s => ({ agentId: s.agentId, lines: s.lines, finished: true })) });
		expect(ps.length).toBe(1);
		const agent = tools(ps[0])[0];
		expect(agent.subagent?.prompts.length).toBe(1);
	});
	test("a prompt sent after an unfinished one is listed in done; the next run does not send it again", () => {
		// the first turn as at its Stop (agent running), followed by another finished prompt (taken from claude-tool)
		const stop1: number = hooks.find(h => h.stdin.hook_event_name === "Stop")!.seen.transcript_path;
		const ls = [...lines(BG).slice(0, stop1), ...lines(TOOL).filter(Boolean), ""];
		const running = subs.map(s => ({ agentId: s.agentId, lines: s.lines }));
		const sent = parseClaudeTranscript(ls, { sessionId: BG.sid, subagents: running });
		expect(sent.map(p => p.text.slice(0, 19))).toEqual(["Run a shell command"]);
		const cur = nextClaudeCursor(ls, 0, { sessionId: BG.sid, subagents: running });
		const promptLine = ls.findIndex(l => l.includes('"type":"user"'));
		expect(cur).toEqual({ offset: Buffer.byteLength(ls.slice(0, promptLine).join("\n")) + 1, done: [sent[0].id] });
		const rest = Buffer.from(ls.join("\n")).subarray(cur.offset).toString("utf8").split("\n");
		const later = parseClaudeTranscript(rest, { sessionId: BG.sid, subagents: subs, done: cur.done });
		expect(later.map(p => p.text.slice(0, 19))).toEqual(["SPAWN a background "]);
		expect(nextClaudeCursor(rest, cur.offset, { sessionId: BG.sid, subagents: subs, done: cur.done })).toEqual({ offset: Buffer.byteLength(ls.join("\n")), done: [] });
	});
	test("the <task-notification> alone (no meta file yet) says the background agent ended", () => {
		const ps = parseClaudeTranscript(lines(BG), { subagents: subs.map(s => ({ agentId: s.agentId, lines: s.lines })) });
		expect(ps.length).toBe(2);
		expect(tools(ps[0])[0].subagent?.prompts.length).toBe(1);
	});
});

describe("API error (mock answers 400 to every call)", () => {
	const ERR = { dir: "claude-api-error", sid: readdirSync(join(FIX, "claude-api-error")).find(f => f.endsWith(".jsonl") && f !== "hooks.jsonl" && f !== "mock.jsonl")!.slice(0, -6) };
	test("one prompt whose only generation carries the error, the attempts, and no usage", () => {
		const ps = parseClaudeTranscript(lines(ERR));
		expect(ps.length).toBe(1);
		expect(ps[0].error).toBe("API Error: 400 mock: invalid_request_error");
		expect(ps[0].answer).toBeUndefined();
		const gens = llms(ps[0]);
		expect(gens.length).toBe(1);
		expect(gens[0]).toMatchObject({ error: "API Error: 400 mock: invalid_request_error", model: "claude-opus-5-5", parameters: { attempts: 6 } });
		expect(gens[0].usage).toBeUndefined();
		const reqs = lines(ERR).filter(Boolean).map(l => JSON.parse(l) as Record<string, any>).filter(l => l.type === "api-request");
		expect(reqs.length).toBe(6);
		expect(gens[0].startMs).toBe(Date.parse(reqs[0].timestamp));
		expect(gens[0].input.map(m => m.role)).toEqual(["system", "user"]);
	});
});

describe("/compact between two resumed turns", () => {
	const CMP = { dir: "claude-compact", sid: "36f00da0-e793-4746-b708-5aa470b181c5" };
	const ps = parseClaudeTranscript(lines(CMP));
	test("three prompts; the slash command is a prompt with a compaction step and its output as answer", () => {
		expect(ps.map(p => p.text)).toEqual(["Run a shell command that prints hi.", "/compact", "After compaction run echo hi."]);
		const c = ps[1];
		expect(c.steps.map(s => s.kind)).toEqual(["compaction"]);
		const step = c.steps[0];
		expect(step.kind === "compaction" && step.tokensBefore).toBe(3038);
		expect(step.kind === "compaction" && step.summary).toStartWith("This session is being continued from a previous conversation");
		expect(c.answer).toBe("Compacted (ctrl+o to see full summary)");
		// the compaction's own 2 API calls are NOT in the transcript: only the 4 turn calls are generations
		const calls = mockCalls(CMP);
		expect(calls.length).toBe(6);
		expect(allLlms(ps).map(g => g.id)).toEqual([calls[0], calls[1], calls[4], calls[5]].map(c => c.messageId));
		// the first prompt does not stretch to the compaction written before the next prompt line
		expect(ps[0].endMs).toBeLessThan(ps[1].startMs);
	});
	test("after compaction the input is: summary, the messages kept verbatim, the command lines, the prompt", () => {
		const g = llms(ps[2])[0];
		expect(g.input.map(m => m.role)).toEqual(["system", "user", "assistant", "user", "user", "user", "user"]);
		expect(g.input[2]).toEqual({ role: "assistant", content: "Done. The tool said: hi" });
		expect(g.input.at(-1)).toEqual({ role: "user", content: "After compaction run echo hi." });
	});
	test("a prompt never answered is complete once the next prompt exists, and aborted", () => {
		const ls = lines(TOOL).filter(Boolean);
		const firstAssistant = ls.findIndex(l => l.includes('"type":"assistant"'));
		const second = JSON.stringify({ type: "user", uuid: "u-2", parentUuid: null, sessionId: TOOL.sid, timestamp: "2026-11-29T23:00:00.000Z", message: { role: "user", content: "next" } });
		const got = parseClaudeTranscript([...ls.slice(0, firstAssistant), second, ""]);
		expect(got.map(p => [p.text.slice(0, 9), p.aborted ?? false, p.steps.length])).toEqual([["Run a she", true, 0]]);
	});
});

describe("two tool calls in one response (parallel)", () => {
	const PAR = { dir: "claude-parallel", sid: "2a371cea-9ab5-4203-bb2c-f1330fa3c9e3" };
	const ps = parseClaudeTranscript(lines(PAR));
	test("one generation with two tool_calls, two tools, and both results in the next input", () => {
		expect(ps.length).toBe(1);
		expect(ps[0].steps.map(s => s.kind)).toEqual(["llm", "tool", "tool", "llm"]);
		expect(tools(ps[0]).map(t => t.output)).toEqual(["hi", "ho"]);
		const [g1, g2] = llms(ps[0]);
		expect(g1.output.tool_calls?.map(c => JSON.parse(c.function.arguments).command)).toEqual(["echo hi", "echo ho"]);
		// the transcript chain branches (each result's parent is its own tool_use line): both results still come back
		expect(g2.input.slice(2)).toEqual([
			{ role: "assistant", content: "I'll run two commands.", tool_calls: g1.output.tool_calls },
			{ role: "tool", tool_call_id: tools(ps[0])[0].id, content: "hi" },
			{ role: "tool", tool_call_id: tools(ps[0])[1].id, content: "ho" },
		]);
		expect(sum(llms(ps[0]).map(inputTotal))).toBe(6029);
	});
});

describe("hook runs replayed at the recorded hook points: every prompt sent once", () => {
	// For each recorded Stop/StopFailure/SubagentStop/SessionEnd, cut the transcript to what it held when the hook
	// ran (`seen`), read from the cursor with the earlier lines as context, send, advance the cursor.
	const cases: { dir: string; sids: string[] }[] = [
		{ dir: "claude-tool", sids: [TOOL.sid] },
		{ dir: "claude-subagent-resume-fork", sids: [SRF.sid, FORK.sid] },
		{ dir: "claude-background", sids: [BG.sid] },
		{ dir: "claude-compact", sids: ["36f00da0-e793-4746-b708-5aa470b181c5"] },
		{ dir: "claude-parallel", sids: [readdirSync(join(FIX, "claude-parallel")).find(f => /^[0-9a-f-]{36}\.jsonl$/.test(f))!.slice(0, -6)] },
		{ dir: "claude-api-error", sids: [readdirSync(join(FIX, "claude-api-error")).find(f => /^[0-9a-f-]{36}\.jsonl$/.test(f))!.slice(0, -6)] },
	];
	for (const c of cases)
		test(c.dir, () => {
			const hooks = readFileSync(join(FIX, c.dir, "hooks.jsonl"), "utf8").split("\n").filter(Boolean).map(l => JSON.parse(l) as Record<string, any>);
			const cursors = new Map<string, { offset: number; done: string[] }>();
			const sent = new Map<string, string[]>();
			let runs = 0;
			for (const h of hooks) {
				const ev: string = h.stdin.hook_event_name;
				if (!["Stop", "StopFailure", "SubagentStop", "SessionEnd"].includes(ev)) continue;
				const sid: string = h.stdin.session_id;
				const seen = h.seen.transcript_path;
				if (typeof seen !== "number") continue;
				runs++;
				const f = { dir: c.dir, sid };
				const full = lines(f).filter(Boolean);
				const now = full.slice(0, seen).join("\n") + "\n";
				const cur = cursors.get(sid) ?? { offset: 0, done: [] };
				const buf = Buffer.from(now);
				const context = buf.subarray(0, cur.offset).toString("utf8").split("\n").slice(0, -1);
				const fresh = buf.subarray(cur.offset).toString("utf8").split("\n");
				// subagent meta files exist only once the agent ended (recorded in the background fixture)
				const metaNow: Record<string, boolean> | undefined = h.subagentsFinished;
				const subs = subagents(f).map(s => (metaNow && !metaNow[`agent-${s.agentId}.meta.json`] ? { agentId: s.agentId, lines: s.lines } : s));
				const o = { sessionId: sid, subagents: subs, done: cur.done, context, final: ev === "SessionEnd" };
				const ps = parseClaudeTranscript(fresh, o);
				sent.set(sid, [...(sent.get(sid) ?? []), ...ps.map(p => p.id)]);
				cursors.set(sid, nextClaudeCursor(fresh, cur.offset, o));
			}
			expect(runs).toBeGreaterThan(0);
			for (const sid of c.sids) {
				const f = { dir: c.dir, sid };
				const all = parseClaudeTranscript(lines(f), { subagents: subagents(f), final: true }).map(p => p.id);
				expect(all.length).toBeGreaterThan(0);
				expect(sent.get(sid)).toEqual(all);
			}
		});
});
