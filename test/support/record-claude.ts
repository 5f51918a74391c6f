// Records the Claude Code fixtures used by test/claude.test.ts with the real `claude -p` against
// mock-anthropic.ts, hooks recorded. Run: node_modules/.bin/bun test/support/record-claude.ts
// Writes test/fixtures/claude-<scenario>/: <session>.jsonl (+ <session>/subagents/*), hooks.jsonl, mock.jsonl
// (kind/n/ids/usage of each API call). Paths of the run are replaced by <RUN>.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT, runClaude, type ClaudeRunResult } from "./hosts.ts";
import { startMockAnthropic, type MockAnthropic } from "./mock-anthropic.ts";

const RECORDER = join(REPO_ROOT, "test/support/claude-hook-recorder.ts");
const OUT = join(REPO_ROOT, "test/fixtures");

function sanitize(text: string, roots: string[]): string {
	// the hook command line (repo path, hook log) and the per-process messaging token are not data we need
	let t = text
		.split(REPO_ROOT)
		.join("<REPO>")
		.replace(/\/[^"\s]*lf-claude-hooks-[^"\s]*\.jsonl/g, "<HOOK_LOG>")
		.replace(/"CLAUDE_CODE_MESSAGING_TOKEN":"[^"]*"/g, '"CLAUDE_CODE_MESSAGING_TOKEN":"<token>"');
	for (const r of roots) {
		t = t.split(r).join("<RUN>");
		t = t.split(r.replace(/[^A-Za-z0-9]/g, "-")).join("<ENCODED-RUN>");
	}
	return t;
}

function copyTree(src: string, dst: string, roots: string[]): void {
	for (const name of readdirSync(src)) {
		const s = join(src, name);
		const d = join(dst, name);
		if (statSync(s).isDirectory()) {
			mkdirSync(d, { recursive: true });
			copyTree(s, d, roots);
		} else writeFileSync(d, sanitize(readFileSync(s, "utf8"), roots));
	}
}

/** Save a project dir's transcripts (all sessions) + hooks + mock calls as one fixture. */
function save(name: string, runs: ClaudeRunResult[], mocks: MockAnthropic[], hookLog: string): void {
	const dir = join(OUT, `claude-${name}`);
	rmSync(dir, { recursive: true, force: true });
	mkdirSync(dir, { recursive: true });
	const roots = [...new Set(runs.map(r => r.root))].sort((a, b) => b.length - a.length);
	copyTree(runs[0].projectDir, dir, roots);
	if (existsSync(hookLog)) writeFileSync(join(dir, "hooks.jsonl"), sanitize(readFileSync(hookLog, "utf8"), roots));
	const calls = mocks.flatMap(m => m.messageCalls()).map(c => JSON.stringify({ n: c.n, kind: c.kind, messageId: c.messageId, toolUseId: c.toolUseId, toolName: c.toolName, usage: c.usage }));
	writeFileSync(join(dir, "mock.jsonl"), calls.join("\n") + "\n");
	const outs = runs.map(r => ({ code: r.code, sessionId: r.sessionId, stdout: r.stdout }));
	writeFileSync(join(dir, "runs.json"), sanitize(JSON.stringify(outs, null, 1), roots) + "\n");
	console.log(name, runs.map(r => `rc=${r.code} ${r.ms}ms session=${r.sessionId}`).join(" | "));
}

async function scenario(name: string, steps: { prompt: string; resume?: "prev"; fork?: boolean }[], mockOpts: Parameters<typeof startMockAnthropic>[0] = {}): Promise<void> {
	const runs: ClaudeRunResult[] = [];
	const mocks: MockAnthropic[] = [];
	const hookLog = join(tmpdir(), `lf-claude-hooks-${name}-${process.pid}.jsonl`);
	for (const s of steps) {
		// a new mock process per claude run, as a real resume happens later against fresh ids
		const mock = await startMockAnthropic(mockOpts);
		mocks.push(mock);
		const prev = runs.at(-1);
		const r = await runClaude({
			prompt: s.prompt,
			mockUrl: mock.url,
			hookCommand: `bun ${RECORDER} ${hookLog}`,
			home: prev?.home,
			cwd: prev?.cwd,
			resume: s.resume ? prev?.sessionId : undefined,
			forkSession: s.fork,
		});
		runs.push(r);
		if (r.code !== 0 && name !== "api-error") console.error(name, "failed", r.code, r.stderr.slice(0, 500));
		await Bun.sleep(300);
		mock.close();
		if (s === steps.at(-1)) save(name, runs, mocks, hookLog);
	}
	rmSync(hookLog, { force: true });
	for (const r of runs) r.cleanup();
}

const only = process.argv.slice(2);
const want = (n: string) => !only.length || only.includes(n);
if (want("tool")) await scenario("tool", [{ prompt: "Run a shell command that prints hi, then tell me what it printed." }]);
if (want("subagent-resume-fork"))
	await scenario("subagent-resume-fork", [
		{ prompt: "SPAWN a subagent that runs echo hi, then tell me what it said." },
		{ prompt: "Now run echo hi yourself.", resume: "prev" },
		{ prompt: "THINK then FAIL: read the missing file.", resume: "prev", fork: true },
	]);
// Claude Code retries a 400 five times (6 api-request lines), then writes a "<synthetic>" assistant error line and exits 1
if (want("api-error")) await scenario("api-error", [{ prompt: "Run a shell command that prints hi." }], { failNext: { status: 400, times: 20 } });
// /compact in -p mode (resumed): compact_boundary + summary lines; the compaction's own API calls are not in the transcript
if (want("compact"))
	await scenario("compact", [
		{ prompt: "Run a shell command that prints hi." },
		{ prompt: "/compact", resume: "prev" },
		{ prompt: "After compaction run echo hi.", resume: "prev" },
	]);
if (want("parallel")) await scenario("parallel", [{ prompt: "TWICE: run two shell commands at once." }]);
if (want("background")) await scenario("background", [{ prompt: "SPAWN a background subagent that runs echo hi." }], { agentBackground: true });
