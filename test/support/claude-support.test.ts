// Smoke test for the Claude Code test support: the real `claude -p` against mock-anthropic.ts, with the hook
// recorder on every hook event. Run: node_modules/.bin/bun test test/support/claude-support.test.ts
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT, runClaude, type ClaudeRunResult } from "./hosts.ts";
import { anthropicUsageFor, startMockAnthropic, type MockAnthropic } from "./mock-anthropic.ts";

type Json = Record<string, any>;
const RECORDER = join(REPO_ROOT, "test/support/claude-hook-recorder.ts");
const readJsonl = (f: string): Json[] =>
	readFileSync(f, "utf8")
		.split("\n")
		.filter(Boolean)
		.map(l => JSON.parse(l) as Json);

let mock: MockAnthropic;
const runs: ClaudeRunResult[] = [];
beforeAll(async () => {
	mock = await startMockAnthropic();
});
afterAll(() => {
	mock.close();
	for (const r of runs) r.cleanup();
});

test("mock-anthropic: count_tokens, JSON answer with a Bash call, distinct usage with a 5m/1h split", async () => {
	const ct = await fetch(`${mock.url}/v1/messages/count_tokens`, { method: "POST", body: "{}" });
	expect(await ct.json()).toEqual({ input_tokens: 42 });
	const res = await fetch(`${mock.url}/v1/messages`, {
		method: "POST",
		body: JSON.stringify({ model: "m", tools: [{ name: "Bash" }], messages: [{ role: "user", content: "FAIL please" }] }),
	});
	const body = (await res.json()) as Json;
	const n = mock.messageCalls().at(-1)!.n!;
	expect(body.id).toBe(`msg_mock_${mock.runId}_${n}`);
	expect(body.content[1]).toMatchObject({ type: "tool_use", name: "Bash", id: `toolu_mock_${mock.runId}_${n}` });
	expect(body.content[1].input.command).toContain("nonexistent");
	expect(body.usage).toEqual(anthropicUsageFor(n));
	expect(body.usage.cache_creation.ephemeral_5m_input_tokens + body.usage.cache_creation.ephemeral_1h_input_tokens).toBe(body.usage.cache_creation_input_tokens);
});

test("runClaude: one Bash call; hooks fire with payloads; the transcript holds the turn", async () => {
	const before = mock.messageCalls().length;
	const log = "hooks.jsonl";
	const r = await runClaude({ prompt: "Run a shell command that prints hi.", mockUrl: mock.url, hookCommand: `bun ${RECORDER} ${log}` });
	runs.push(r);
	expect(r.code).toBe(0);
	expect(r.stdout.trim()).toBe("Done. The tool said: hi");
	const calls = mock.messageCalls().slice(before);
	expect(calls.map(c => c.kind)).toEqual(["bash", "final"]);
	expect(r.sessionId).toMatch(/^[0-9a-f-]{36}$/);
	expect(existsSync(r.transcriptFile!)).toBe(true);
	const hooks = readJsonl(join(r.cwd, log));
	const events = hooks.map(h => h.stdin.hook_event_name);
	for (const ev of ["SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "Stop", "SessionEnd"]) expect(events).toContain(ev);
	const stop = hooks.find(h => h.stdin.hook_event_name === "Stop")!;
	expect(stop.stdin.session_id).toBe(r.sessionId);
	expect(stop.stdin.transcript_path).toBe(r.transcriptFile);
	expect(stop.stdin.last_assistant_message).toBe("Done. The tool said: hi");
	// when Stop runs, the transcript is complete up to the final assistant line
	const lines = readJsonl(r.transcriptFile!);
	const finalIdx = lines.findIndex(l => l.type === "assistant" && l.message?.id === calls[1].messageId);
	expect(finalIdx).toBeGreaterThan(0);
	expect(stop.seen.transcript_path).toBeGreaterThanOrEqual(finalIdx + 1);
	const pre = hooks.find(h => h.stdin.hook_event_name === "PreToolUse")!;
	expect(pre.stdin.tool_name).toBe("Bash");
	expect(pre.stdin.tool_use_id).toBe(calls[0].toolUseId);
	// usage as sent, repeated per block line
	const usages = lines.filter(l => l.type === "assistant" && l.message.id === calls[0].messageId).map(l => l.message.usage.input_tokens);
	expect(usages.length).toBe(2);
	expect(new Set(usages)).toEqual(new Set([calls[0].usage!.input_tokens]));
}, 60_000);

test("runClaude + parser: a live subagent run, then --resume and --fork-session, parse to the mock's calls", async () => {
	const { parseClaudeTranscript } = ((await import("../../langfuse.ts")).default as unknown as { internals: import("../../langfuse.ts").Internals }).internals;
	const { readdirSync } = await import("node:fs");
	const subs = (r: ClaudeRunResult) =>
		r.subagentFiles.map(f => {
			const agentId = f.replace(/^.*agent-/, "").replace(/\.jsonl$/, "");
			return { agentId, lines: readFileSync(f, "utf8").split("\n"), meta: JSON.parse(readFileSync(f.replace(/\.jsonl$/, ".meta.json"), "utf8")) };
		});
	const before = mock.messageCalls().length;
	const r1 = await runClaude({ prompt: "SPAWN a subagent that runs echo hi.", mockUrl: mock.url });
	runs.push(r1);
	expect(r1.code).toBe(0);
	expect(r1.subagentFiles.length).toBe(1);
	const p1 = parseClaudeTranscript(readFileSync(r1.transcriptFile!, "utf8").split("\n"), { subagents: subs(r1) });
	expect(p1.length).toBe(1);
	const agent = p1[0].steps.find(s => s.kind === "tool");
	expect(agent?.kind === "tool" && agent.name).toBe("Agent");
	const childGens = agent?.kind === "tool" ? (agent.subagent?.prompts[0].steps.filter(s => s.kind === "llm").map(s => s.id) ?? []) : [];
	const mainGens = p1[0].steps.filter(s => s.kind === "llm").map(s => s.id);
	expect([...mainGens, ...childGens].sort()).toEqual(mock.messageCalls().slice(before).map(c => c.messageId!).sort());
	// --resume appends to the same file; the fork writes a new one whose copied prompt is skipped
	const r2 = await runClaude({ prompt: "Now FAIL once.", mockUrl: mock.url, home: r1.home, cwd: r1.cwd, resume: r1.sessionId });
	runs.push(r2);
	expect(r2.sessionId).toBe(r1.sessionId);
	const p2 = parseClaudeTranscript(readFileSync(r2.transcriptFile!, "utf8").split("\n"), { subagents: subs(r2) });
	expect(p2.map(p => p.text)).toEqual(["SPAWN a subagent that runs echo hi.", "Now FAIL once."]);
	const r3 = await runClaude({ prompt: "Run echo hi again.", mockUrl: mock.url, home: r1.home, cwd: r1.cwd, resume: r1.sessionId, forkSession: true });
	runs.push(r3);
	expect(r3.sessionId).not.toBe(r1.sessionId);
	expect(readdirSync(r3.projectDir).filter(f => f.endsWith(".jsonl")).length).toBe(2);
	const p3 = parseClaudeTranscript(readFileSync(r3.transcriptFile!, "utf8").split("\n"));
	expect(p3.map(p => [p.text, p.sessionId])).toEqual([["Run echo hi again.", r3.sessionId ?? "?"]]);
	const failed = p2[1].steps.find(s => s.kind === "tool");
	expect(failed?.kind === "tool" && failed.isError).toBe(true);
}, 90_000);
