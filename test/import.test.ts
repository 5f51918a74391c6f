// History import (langfuse.ts §7.5) on records made by the real hosts WITHOUT the extension
// (test/fixtures/import/, re-record with test/fixtures/import/record.ts). Each host's own numbers
// (test/fixtures/import/totals.json) must come out of the parsed prompts, and out of what the receiver
// gets from `runImport`, exactly.
import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import langfuse, { type Internals } from "../langfuse.ts";
import { generateHistory } from "./support/import-history.ts";
import { readRecording, replay } from "./support/replay.ts";
import type { Receiver } from "./support/receiver.ts";
import { useReceiver, useTempDir } from "./support/rig.ts";
import { attr, json, latest, meta, sum, traceMeta, type } from "./support/spans.ts";

const {
	parsePiSessionFile: parsePi,
	linkPiSubagents,
	openOpenCodeDb,
	importSources,
	classifyRecord,
	promptsToSend,
	runImport,
	createRuntime,
	attachPiHost,
} = (langfuse as unknown as { internals: Internals }).internals;
type Prompt = ReturnType<typeof parsePi>["prompts"][number];
type Step = Prompt["steps"][number];
type Llm = Extract<Step, { kind: "llm" }>;
type Tool = Extract<Step, { kind: "tool" }>;
type PiFile = Parameters<typeof linkPiSubagents>[0][number];

const DIR = resolve(import.meta.dir, "fixtures/import");
const totals = JSON.parse(readFileSync(join(DIR, "totals.json"), "utf8"));

function walk(d: string): string[] {
	return readdirSync(d, { withFileTypes: true }).flatMap(e => (e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)]));
}
const parsePiSessionFile = (lines: string[]) => parsePi(lines);
function readSessions(host: "omp" | "pi" | "omp-compaction"): PiFile[] {
	return walk(join(DIR, host, "sessions"))
		.filter(f => f.endsWith(".jsonl"))
		.sort()
		.map(path => ({ path, parsed: parsePiSessionFile(readFileSync(path, "utf8").split("\n")) }));
}

/** Every step, subagents' included (depth first). */
function allSteps(prompts: Prompt[]): Step[] {
	return prompts.flatMap(p => p.steps.flatMap(s => (s.kind === "tool" && s.subagent ? [s, ...allSteps(s.subagent.prompts)] : [s])));
}
const llms = (ps: Prompt[]) => allSteps(ps).filter((s): s is Llm => s.kind === "llm");
const tools = (ps: Prompt[]) => allSteps(ps).filter((s): s is Tool => s.kind === "tool");
const tokenSum = (ps: Prompt[], key: "input" | "output" | "cacheRead" | "cacheWrite" | "total") => sum(llms(ps).map(s => s.usage?.[key] ?? 0));
const costSum = (ps: Prompt[]) => sum(llms(ps).map(s => s.costUsd?.total ?? 0));
const hostSum = (sessions: any[], f: (s: any) => number) => sum(sessions.map(f));

/** OpenCode's database, rebuilt from the SQL dump in the fixtures. */
function openCodeDbFile(dir: string): string {
	const file = join(dir, "opencode.db");
	const mem = new Database(":memory:");
	mem.exec(readFileSync(join(DIR, "opencode/opencode.sql"), "utf8"));
	mem.exec(`VACUUM INTO '${file}'`);
	mem.close();
	return file;
}

async function readOpenCode(file: string, sinceMs = 0) {
	const db = await openOpenCodeDb(file, sinceMs);
	if ("reason" in db) throw new Error(db.reason);
	try {
		return db.sessions.flatMap(s => db.read(s.id));
	} finally {
		db.close();
	}
}

describe("omp session files", () => {
	const files = readSessions("omp");
	const tops = linkPiSubagents(files);

	test("two files, one top-level session: the subagent is nested into the task tool that ran it", () => {
		expect(files.length).toBe(2);
		expect(tops.length).toBe(1);
		const child = files.find(f => f.parsed.parentSession)!;
		const task = tools(tops[0].parsed.prompts).find(t => t.name === "task")!;
		expect(task.id).toBe("call_mock_3");
		expect(task.subagent?.sessionId).toBe(child.parsed.sessionId);
		expect(task.subagent?.sessionId).toBe(totals.omp.sessions.find((s: any) => s.parentSession).sessionId);
		expect(task.subagent?.prompts.length).toBe(1);
		expect(task.subagent?.prompts[0].text).toContain("child RUN<<echo kid>>");
		// the child's calls happen while the task tool runs
		const childLlms = llms(task.subagent!.prompts);
		expect(childLlms.length).toBe(2);
		for (const s of childLlms) expect(s.startMs >= task.startMs && s.endMs <= task.endMs!).toBe(true);
	});

	test("a child whose task tool is missing stays top-level, linked to its parent by session id", () => {
		const parent = files.find(f => !f.parsed.parentSession)!;
		const child = files.find(f => f.parsed.parentSession)!;
		const lines = readFileSync(parent.path, "utf8").split("\n").filter(l => !l.includes('"toolName":"task"'));
		const again = linkPiSubagents([
			{ path: parent.path, parsed: parsePiSessionFile(lines) },
			{ path: child.path, parsed: parsePiSessionFile(readFileSync(child.path, "utf8").split("\n")) },
		]);
		expect(again.length).toBe(2);
		// its header names the parent's file: the import links it by the session id in that name
		expect(again[1].parsed.parentSession).toEndWith(`_${parent.parsed.sessionId}.jsonl`);
	});

	test("prompts, generations, tools, the failing tool", () => {
		const s = tops[0].parsed;
		expect(s.sessionId).toBe(totals.omp.sessions.find((x: any) => !x.parentSession).sessionId);
		expect(s.prompts.map(p => p.text)).toEqual(["Two commands: RUN<<echo one>> RUN<<cat /nonexistent-file>> SPAWN<<child RUN<<echo kid>>>>", "Second prompt: just answer"]);
		expect(s.prompts.map(p => p.steps.filter(x => x.kind === "llm").length)).toEqual([4, 1]);
		expect(s.prompts.map(p => p.steps.filter(x => x.kind === "tool").length)).toEqual([3, 0]);
		expect(llms(s.prompts).length).toBe(7); // 5 parent + 2 subagent
		expect(tools(s.prompts).map(t => `${t.name}:${t.isError}`)).toEqual(["bash:false", "bash:true", "task:false", "bash:false", "yield:false"]);
		const failed = tools(s.prompts).find(t => t.isError)!;
		expect(failed.input).toEqual({ command: "cat /nonexistent-file", i: "run cat /nonexistent-file" });
		expect(String(failed.output)).toContain("Command exited with code 1");
		expect(s.prompts[0].answer).toBe("DONE: 3 commands");
		expect(s.complete).toBe(true);
	});

	test("tokens and cost equal omp's own per-message record (parent + subagent); the task tool's usage copy is not added", () => {
		const ps = tops[0].parsed.prompts;
		const host = totals.omp.sessions;
		expect(tokenSum(ps, "input")).toBe(hostSum(host, s => s.tokens.input));
		expect(tokenSum(ps, "input")).toBe(7700);
		expect(tokenSum(ps, "output")).toBe(hostSum(host, s => s.tokens.output));
		expect(tokenSum(ps, "cacheRead")).toBe(hostSum(host, s => s.tokens.cacheRead));
		expect(tokenSum(ps, "total")).toBe(hostSum(host, s => s.tokens.total));
		expect(costSum(ps)).toBeCloseTo(hostSum(host, s => s.cost.total), 12);
		expect(costSum(ps)).toBeCloseTo(0.029085, 12);
		// non-overlapping keys: Langfuse's total = the sum of the details
		for (const g of llms(ps)) expect(g.usage!.input! + g.usage!.output! + g.usage!.cacheRead! + g.usage!.cacheWrite!).toBe(g.usage!.total!);
	});

	test("real timestamps: request start, completion, first token; tools from tool_execution_start", () => {
		const [g0] = llms(tops[0].parsed.prompts);
		// ids are what the live hooks also see: the assistant message's timestamp (its entry id comes later)
		expect(g0).toMatchObject({ id: "1795979042562", model: "mock-model", provider: "mock", stopReason: "toolUse" });
		expect(tops[0].parsed.prompts.map(p => p.id)).toEqual(tops[0].parsed.prompts.map(p => String(p.startMs)));
		expect(g0.startMs).toBe(1795979042562);
		expect(g0.endMs).toBe(1795979042587);
		expect(g0.completionStartMs).toBe(1795979042573);
		const [t0] = tools(tops[0].parsed.prompts);
		expect(t0.startMs).toBe(Date.parse("2026-11-29T19:04:02.594Z"));
		expect(t0.endMs).toBe(1795979042634);
		// each call's input is the conversation before it: user, then (assistant, tool) pairs; the
		// subagent's (depth first after the task tool) starts with its recorded system prompt
		expect(llms(tops[0].parsed.prompts).map(g => g.input.length)).toEqual([1, 3, 5, 2, 4, 7, 9]);
		expect(llms(tops[0].parsed.prompts)[3].input[0].role).toBe("system");
	});
});

describe("pi session file", () => {
	const [file] = readSessions("pi");
	const s = file.parsed;
	const host = totals.pi.sessions[0];

	test("prompts, generations, tools, error", () => {
		expect(s.sessionId).toBe(host.sessionId);
		expect(s.prompts.length).toBe(2);
		expect(llms(s.prompts).length).toBe(host.assistantMessages);
		expect(llms(s.prompts).length).toBe(4);
		expect(tools(s.prompts).map(t => `${t.id}:${t.isError}`)).toEqual(["call_mock_1:false", "call_mock_2:true"]);
		expect(s.prompts[1]).toMatchObject({ id: "1795979052895", text: "Second prompt: just answer", answer: "DONE: 2 commands", metadata: { entryId: "5de47870" } });
		// pi records no first-token time: left out, not invented
		expect(llms(s.prompts).every(g => g.completionStartMs === undefined)).toBe(true);
		expect(s.complete).toBe(true);
	});

	test("tokens and cost equal pi's own record", () => {
		expect(tokenSum(s.prompts, "input")).toBe(host.tokens.input);
		expect(tokenSum(s.prompts, "output")).toBe(host.tokens.output);
		expect(tokenSum(s.prompts, "cacheRead")).toBe(host.tokens.cacheRead);
		expect(tokenSum(s.prompts, "total")).toBe(4806);
		expect(costSum(s.prompts)).toBeCloseTo(host.cost.total, 12);
		expect(llms(s.prompts)[0].costUsd).toEqual({ input: 0.0024000000000000002, output: 0.00075, cacheRead: 0.000059999999999999995, cacheWrite: 0, total: 0.00321 });
	});

	test("a file still being written: the half line is skipped and the prompt is not complete", () => {
		const lines = readFileSync(file.path, "utf8").split("\n");
		// up to the failing tool's result, then half of the final answer's line
		const cut = [...lines.slice(0, 8), lines[8].slice(0, 40)];
		const partial = parsePiSessionFile(cut);
		expect(partial.prompts.length).toBe(1);
		expect(partial.complete).toBe(false);
		expect(tools(partial.prompts).map(t => t.isError)).toEqual([false, true]);
	});
});

describe("session tree", () => {
	test("a regenerated answer (a second branch from the same user message) sees only its own ancestors", () => {
		const lines = [
			{ type: "session", version: 3, id: "s1", timestamp: "2026-01-01T00:00:00.000Z", cwd: "/w" },
			{ type: "message", id: "u1", parentId: null, timestamp: "2026-01-01T00:00:01.000Z", message: { role: "user", content: [{ type: "text", text: "hi" }], timestamp: 1767225601000 } },
			{ type: "message", id: "a1", parentId: "u1", timestamp: "2026-01-01T00:00:02.000Z", message: { role: "assistant", content: [{ type: "text", text: "first" }], usage: { input: 10, output: 1, cacheRead: 0, cacheWrite: 0, totalTokens: 11, cost: { total: 0 } }, stopReason: "stop", timestamp: 1767225601500 } },
			{ type: "message", id: "a2", parentId: "u1", timestamp: "2026-01-01T00:00:03.000Z", message: { role: "assistant", content: [{ type: "text", text: "second" }], stopReason: "stop", timestamp: 1767225602500 } },
		].map(l => JSON.stringify(l));
		const s = parsePiSessionFile(lines);
		const gens = llms(s.prompts);
		expect(gens.map(g => g.input.map(m => m.content))).toEqual([["hi"], ["hi"]]);
		// an unpriced model records cost 0: no cost is sent rather than a zero
		expect(gens[0].costUsd).toBeUndefined();
		expect(gens[0].endMs).toBe(Date.parse("2026-01-01T00:00:02.000Z"));
		expect(s.prompts[0].answer).toBe("second");
	});
});

describe("a second import sends only what is new", () => {
	const [file] = readSessions("pi");
	const lines = readFileSync(file.path, "utf8").split("\n");

	test("after the last prompt; the last one again when it was still open; everything when the mark is gone", () => {
		const full = file.parsed.prompts;
		expect(promptsToSend(full, undefined).length).toBe(2);
		expect(promptsToSend(full, { lastPromptId: "1795979052895", complete: true })).toEqual([]);
		// imported while pi was still in the first prompt (up to the failing tool's result)
		const early = parsePiSessionFile(lines.slice(0, 8));
		expect(early.complete).toBe(false);
		expect(promptsToSend(full, { lastPromptId: early.prompts.at(-1)!.id, complete: early.complete }).map(p => p.id)).toEqual(["1795979051961", "1795979052895"]);
		expect(promptsToSend(full, { lastPromptId: "1795979051961", complete: true }).map(p => p.id)).toEqual(["1795979052895"]);
		expect(promptsToSend(full, { lastPromptId: "gone", complete: true }).length).toBe(2);
	});
});

describe("omp compaction", () => {
	const [file] = readSessions("omp-compaction");
	const s = file.parsed;

	test("compactions become steps with summary and tokensBefore; the next call sees the summary first", () => {
		const comps = allSteps(s.prompts).filter(x => x.kind === "compaction");
		expect(comps.length).toBe(totals["omp-compaction"].sessions[0].compactions);
		expect(comps.map(c => (c.kind === "compaction" ? c.tokensBefore : 0))).toEqual([1050, 1353, 1656]);
		expect(s.prompts.map(p => p.steps.map(x => x.kind).join(","))).toEqual(["llm,tool,compaction,llm,compaction", "llm,compaction"]);
		const after = llms(s.prompts)[1];
		expect(String(after.input[0].content)).toStartWith("[compaction summary]");
		// kept entries (from firstKeptEntryId): the first assistant message and its tool result
		expect(after.input.map(m => m.role)).toEqual(["user", "assistant", "tool"]);
		expect(tokenSum(s.prompts, "total")).toBe(totals["omp-compaction"].sessions[0].tokens.total);
	});
});

describe("OpenCode database", () => {
	const tmp = mkdtempSync(join(tmpdir(), "lf-import-"));
	const dbFile = openCodeDbFile(tmp);
	const host = totals.opencode.sessions;

	test("one top-level session with the subagent session nested into its task tool", async () => {
		const sessions = await readOpenCode(dbFile);
		expect(sessions.length).toBe(1);
		const [s] = sessions;
		const top = host.find((x: any) => !x.parentId);
		const child = host.find((x: any) => x.parentId);
		expect(s).toMatchObject({ sessionId: top.sessionId, title: "Mock session title", complete: true });
		expect(s.prompts.map(p => p.text)).toEqual(["Two commands: RUN<<echo one>> RUN<<cat /nonexistent-file>> SPAWN<<child RUN<<echo kid>>>>", "Second prompt: just answer"]);
		expect(s.prompts.map(p => p.steps.filter(x => x.kind === "llm").length)).toEqual([4, 1]);
		expect(llms(s.prompts).length).toBe(top.assistantMessages + child.assistantMessages);
		// bash records a failing command as completed with its exit code: the exit code makes it an ERROR
		expect(tools(s.prompts).map(t => `${t.name}:${t.exitCode ?? "-"}`)).toEqual(["bash:0", "bash:1", "task:-", "bash:0"]);
		const task = tools(s.prompts).find(t => t.name === "task")!;
		expect(task.subagent?.sessionId).toBe(child.sessionId);
		expect(task.subagent?.prompts.map(p => p.text)).toEqual(["child RUN<<echo kid>>"]);
		const failed = tools(s.prompts).find(t => t.exitCode === 1)!;
		expect(failed.output).toBe("cat: /nonexistent-file: No such file or directory\n");
	});

	test("tokens and cost equal OpenCode's own session totals (parent + subagent)", async () => {
		const ps = (await readOpenCode(dbFile))[0].prompts;
		expect(tokenSum(ps, "input")).toBe(hostSum(host, s => s.tokens.input));
		expect(tokenSum(ps, "input")).toBe(7700);
		expect(tokenSum(ps, "output")).toBe(hostSum(host, s => s.tokens.output));
		expect(tokenSum(ps, "cacheRead")).toBe(hostSum(host, s => s.tokens.cacheRead));
		expect(costSum(ps)).toBeCloseTo(hostSum(host, s => s.cost), 12);
		const g = llms(ps)[0];
		expect(g.usage).toEqual({ input: 800, output: 50, reasoning: 0, cacheRead: 200, cacheWrite: 0, total: 1050 });
		expect(g.costUsd).toEqual({ total: 0.00321 });
		expect(g.stopReason).toBe("tool-calls");
		expect(g.completionStartMs! > g.startMs && g.completionStartMs! <= g.endMs).toBe(true);
	});

	test("sinceMs keeps only sessions updated since then", async () => {
		expect(await readOpenCode(dbFile, Date.now() + 86_400_000 * 365 * 10)).toEqual([]);
		// the parent changed after the subagent's last update: the subagent still comes along, nested
		const child = host.find((x: any) => x.parentId);
		const db = new Database(dbFile, { readonly: true });
		const childUpdated = (db.query("select time_updated from session where id = ?").get(child.sessionId) as { time_updated: number }).time_updated;
		db.close();
		const later = await readOpenCode(dbFile, childUpdated + 1);
		expect(later.length).toBe(1);
		const task = tools(later[0].prompts).find(t => t.name === "task")!;
		expect(task.subagent?.prompts.length).toBe(1);
	});

	test("a missing database answers the reason instead of throwing", async () => {
		const r = await openOpenCodeDb(join(tmp, "nope", "opencode.db"));
		expect("reason" in r && r.reason).toStartWith("cannot open ");
	});

	test("under Node 20 (pi's runtime, via jiti) the file loads and says SQLite is unavailable", () => {
		// loaded the way pi loads extensions: jiti's ESM import
		const script = `import { createJiti } from "jiti"; const m = await createJiti(import.meta.url, { moduleCache: false }).import(${JSON.stringify(resolve(import.meta.dir, "../langfuse.ts"))}); const r = await m.default.internals.openOpenCodeDb(${JSON.stringify(dbFile)}); console.log(JSON.stringify({ node: process.versions.node, ok: !r.reason, reason: r.reason, n: r.reason ? 0 : r.sessions.length }))`;
		const p = spawnSync("node", ["--input-type=module", "-e", script], { cwd: resolve(import.meta.dir, ".."), encoding: "utf8", timeout: 30_000 });
		expect(p.status).toBe(0);
		const out = JSON.parse(p.stdout.trim().split("\n").pop()!);
		const major = Number(out.node.split(".")[0]);
		if (major >= 23 || (major === 22 && Number(out.node.split(".")[1]) >= 5)) expect(out).toMatchObject({ ok: true, n: 1 });
		else {
			expect(out.ok).toBe(false);
			expect(out.reason).toContain("no SQLite to read ");
		}
	}, 60_000);

	test("cleanup", () => {
		rmSync(tmp, { recursive: true, force: true });
	});
});

describe("discovery", () => {
	test("default locations follow each host's own rules", () => {
		expect(importSources({}, "/home/u")).toEqual([
			{ host: "omp", path: "/home/u/.omp/agent/sessions" },
			{ host: "pi", path: "/home/u/.pi/agent/sessions" },
			{ host: "opencode", path: "/home/u/.local/share/opencode/opencode.db" },
			{ host: "codex", path: "/home/u/.codex/sessions" },
			{ host: "claude", path: "/home/u/.claude/projects" },
		]);
		const custom = importSources({ XDG_DATA_HOME: "/x/data", CODEX_HOME: "/c" }, "/home/u");
		expect(custom.find(s => s.host === "opencode")?.path).toBe("/x/data/opencode/opencode.db");
		expect(custom.filter(s => s.host === "omp").map(s => s.path)).toEqual(["/home/u/.omp/agent/sessions", "/x/data/omp/sessions"]);
		expect(custom.find(s => s.host === "codex")?.path).toBe("/c/sessions");
	});

	test("classify: omp / pi / codex files by content, folders, SQLite files, missing paths", async () => {
		const omp = readSessions("omp")[0].path;
		const pi = readSessions("pi")[0].path;
		const codex = walk(join(DIR, "codex")).find(f => f.endsWith(".jsonl"))!;
		expect(classifyRecord(omp)).toBe("omp");
		expect(classifyRecord(pi)).toBe("pi");
		expect(classifyRecord(codex)).toBe("codex");
		const claude = resolve(import.meta.dir, "fixtures/claude-background/c8bb4037-dc37-40af-9670-ef955af1796f");
		expect(classifyRecord(`${claude}.jsonl`)).toBe("claude");
		// a subagent's transcript is read with its parent's, never on its own
		expect(classifyRecord(join(claude, "subagents/agent-a320de6ac8f37ba50.jsonl"))).toBeUndefined();
		expect(classifyRecord(join(DIR, "omp"))).toBeUndefined();
		expect(classifyRecord(join(DIR, "missing.jsonl"))).toBeUndefined();
		expect(classifyRecord(join(DIR, "totals.json"))).toBeUndefined();
		const tmp = mkdtempSync(join(tmpdir(), "lf-import-"));
		const db = new Database(join(tmp, "x.db"));
		db.exec("create table t(a)");
		db.close();
		expect(classifyRecord(join(tmp, "x.db"))).toBe("opencode");
		// an omp file written by a version without the title line: the model_change entry tells
		writeFileSync(join(tmp, "a.jsonl"), '{"type":"session","id":"a"}\n{"type":"model_change","id":"b","model":"p/m"}\n');
		expect(classifyRecord(join(tmp, "a.jsonl"))).toBe("omp");
		rmSync(tmp, { recursive: true, force: true });
	});
});

// ── runImport → the local receiver: what Langfuse gets ──

describe("import into Langfuse (the local receiver)", () => {
	let receiver: Receiver;
	let root: string;
	let history: string;
	useReceiver(started => (receiver = started), { resetEachTest: true });
	useTempDir("lf-import-run-", dir => {
		root = dir;
		history = join(root, "history");
		for (const file of walk(DIR).filter(f => f.endsWith(".jsonl"))) {
			const to = join(history, file.slice(DIR.length + 1));
			mkdirSync(dirname(to), { recursive: true });
			copyFileSync(file, to);
		}
		openCodeDbFile(history);
	});

	const env = (extra: Record<string, string> = {}) => ({
		LANGFUSE_PUBLIC_KEY: "pk-lf-test",
		LANGFUSE_SECRET_KEY: "sk-lf-test",
		LANGFUSE_HOST: receiver.url,
		LANGFUSE_SPOOL_DIR: join(root, "spool"),
		...extra,
	});
	async function importOnce(options: { force?: boolean; dryRun?: boolean; paths?: string[] } = {}, extraEnv: Record<string, string> = {}) {
		const runtime = createRuntime(env(extraEnv), { exitHook: false, replaySpool: false, write: () => {} });
		try {
			return await runImport(runtime, { paths: options.paths ?? [history], force: options.force, dryRun: options.dryRun });
		} finally {
			runtime.exporter?.stop();
		}
	}

	const spansOf = (sessionId: string) => latest(receiver.spans).filter(span => attr(span, "session.id") === sessionId);
	/** What Langfuse shows for a session: traces, generations, tools, ERROR tools, tokens by its rule (keys containing input/output), cost. */
	function shown(sessionId: string) {
		const spans = spansOf(sessionId);
		const generations = spans.filter(span => type(span) === "generation");
		const usage = generations.map(span => json(span, "langfuse.observation.usage_details") as Record<string, number>);
		const keys = (part: string) => sum(usage.flatMap(u => Object.entries(u).filter(([key]) => key.includes(part)).map(([, value]) => value)));
		const toolSpans = spans.filter(span => type(span) === "tool");
		return {
			traces: new Set(spans.map(span => span.traceId)).size,
			generations: generations.length,
			tools: toolSpans.length,
			errors: toolSpans.filter(span => attr(span, "langfuse.observation.level") === "ERROR").length,
			input: keys("input"),
			output: keys("output"),
			cost: sum(generations.map(span => json(span, "langfuse.observation.cost_details").total ?? 0)),
		};
	}

	test("every host's record becomes traces whose counts, tokens (Langfuse's rule) and cost equal the host's own", async () => {
		const result = await importOnce();
		expect(result.problems).toEqual([]);
		expect(result.stalled).toBeUndefined();
		for (const host of ["omp", "omp-compaction", "pi"]) {
			for (const s of totals[host].sessions) {
				const got = shown(s.sessionId);
				expect({ host, ...got, cost: Number(got.cost.toFixed(9)) }).toEqual({
					host,
					traces: s.userMessages,
					generations: s.assistantMessages,
					tools: s.toolResults,
					errors: s.toolErrors,
					input: s.tokens.input + s.tokens.cacheRead + s.tokens.cacheWrite,
					output: s.tokens.output,
					cost: Number(s.cost.total.toFixed(9)),
				});
			}
		}
		for (const s of totals.opencode.sessions) {
			const got = shown(s.sessionId);
			expect({ ...got, cost: Number(got.cost.toFixed(9)) }).toMatchObject({
				traces: s.userMessages,
				generations: s.assistantMessages,
				input: s.tokens.input + s.tokens.cacheRead + s.tokens.cacheWrite,
				output: s.tokens.output + s.tokens.reasoning,
				cost: Number(s.cost.toFixed(9)),
			});
		}
		const codex = shown(totals.codex.threadId);
		expect(codex).toMatchObject({ traces: totals.codex.turns, generations: totals.codex.modelResponses, input: totals.codex.tokens.input_tokens, output: totals.codex.tokens.output_tokens, cost: 0 });
		// the run's own summary says the same
		expect(result).toMatchObject({ total: 5, done: 5, sessions: 7, traces: 12, observations: 75, inputTokens: 31300, outputTokens: 1313, unchanged: 0 });
		expect(result.costUsd).toBeCloseTo(0.085365, 9);
	});

	test("Claude Code transcripts too: counts and tokens equal what the model reported; the hook's cursor is shared", async () => {
		const dir = resolve(import.meta.dir, "fixtures/claude-tool");
		const usage = readFileSync(join(dir, "mock.jsonl"), "utf8").split("\n").filter(Boolean).map(line => JSON.parse(line).usage);
		const first = await importOnce({ paths: [dir] });
		expect(first).toMatchObject({ total: 1, sessions: 1, traces: 1, problems: [] });
		expect(shown("450b2925-bb80-4be5-918d-19ed1c2d49ae")).toMatchObject({
			traces: 1,
			generations: usage.length,
			tools: 1,
			input: sum(usage.map((u: any) => u.input_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens)),
			output: sum(usage.map((u: any) => u.output_tokens)),
		});
		expect(readdirSync(join(root, "spool", "claude")).filter(name => name.endsWith(".json")).length).toBe(1);
		expect((await importOnce({ paths: [dir] })).observations).toBe(0);
	});

	test("subagents are sessions of their own, tagged, linked to the parent's trace and task tool (as live)", async () => {
		await importOnce();
		for (const [parentId, childId] of [
			[totals.omp.sessions[1].sessionId, totals.omp.sessions[0].sessionId],
			[totals.opencode.sessions[0].sessionId, totals.opencode.sessions[1].sessionId],
		]) {
			const task = spansOf(parentId).find(span => type(span) === "tool" && span.name === "task")!;
			expect(task).toBeDefined();
			const childRoot = spansOf(childId).find(span => attr(span, "langfuse.trace.name") !== undefined)!;
			expect(attr(childRoot, "langfuse.trace.tags")).toContain("subagent");
			expect(traceMeta(childRoot, "parentSessionId")).toBe(parentId);
			expect(traceMeta(childRoot, "parentTraceId")).toBe(task.traceId);
			expect(traceMeta(childRoot, "parentObservationId")).toBe(task.spanId);
		}
		// OpenCode's traces carry the session's title, as live once the title call answered
		const openCodeRoots = spansOf(totals.opencode.sessions[0].sessionId).filter(span => attr(span, "langfuse.trace.name") !== undefined);
		expect(new Set(openCodeRoots.map(span => attr(span, "langfuse.trace.name")))).toEqual(new Set(["Mock session title"]));
	});

	test("a second import sends nothing; --force sends the same observations again (same ids: no duplicates)", async () => {
		const first = await importOnce();
		const ids = new Set(receiver.spans.map(span => `${span.traceId}/${span.spanId}`));
		const spans = receiver.spans.length;
		expect(ids.size).toBe(first.observations);
		const second = await importOnce();
		expect(second).toMatchObject({ done: 5, unchanged: 5, sessions: 0, traces: 0, observations: 0 });
		expect(receiver.spans.length).toBe(spans);
		const forced = await importOnce({ force: true });
		expect(forced.observations).toBe(first.observations);
		expect(receiver.spans.length).toBeGreaterThan(spans);
		expect(new Set(receiver.spans.map(span => `${span.traceId}/${span.spanId}`))).toEqual(ids);
	});

	test("a session file that grew: the prompt that was still open goes again (same trace), then only the new one", async () => {
		const [pi] = totals.pi.sessions;
		const file = join(history, pi.file);
		const lines = readFileSync(file, "utf8").split("\n");
		writeFileSync(file, lines.slice(0, 8).join("\n") + "\n");
		const early = await importOnce({ paths: [file] });
		expect(early.traces).toBe(1);
		const firstTrace = spansOf(pi.sessionId)[0]!.traceId;
		writeFileSync(file, lines.join("\n"));
		const later = await importOnce({ paths: [file] });
		// the open first prompt again, and the second
		expect(later.traces).toBe(2);
		expect(shown(pi.sessionId)).toMatchObject({ traces: 2, generations: 4, tools: 2, errors: 1 });
		expect(spansOf(pi.sessionId).filter(span => span.traceId === firstTrace).length).toBeGreaterThan(1);
		writeFileSync(file, `${lines.join("\n")}\n`); // touched, nothing new
		expect((await importOnce({ paths: [file] })).traces).toBe(0);
	});

	test("sampling, export mode and redaction apply as live; --dry-run sends nothing and remembers nothing", async () => {
		const dry = await importOnce({ dryRun: true });
		expect(dry).toMatchObject({ sessions: 7, traces: 12, observations: 75 });
		expect(receiver.requests.length).toBe(0);
		const none = await importOnce({}, { LANGFUSE_SAMPLE_RATE: "0" });
		expect(none).toMatchObject({ sampledOut: 5, observations: 0 });
		// the sampled-out run remembered the files (the same rate samples them out again): --force
		await importOnce({ paths: [join(history, totals.pi.sessions[0].file)], force: true }, { LANGFUSE_EXPORT_MODE: "metadata_only" });
		const spans = spansOf(totals.pi.sessions[0].sessionId);
		expect(spans.length).toBeGreaterThan(0);
		expect(spans.every(span => attr(span, "langfuse.observation.input") === undefined && attr(span, "langfuse.trace.input") === undefined)).toBe(true);
		// grouped by session, as live: one trace for the whole session, a span per prompt
		await receiver.reset();
		await importOnce({ paths: [join(history, totals.pi.sessions[0].file)], force: true }, { LANGFUSE_TRACE_GROUPING: "session" });
		expect(shown(totals.pi.sessions[0].sessionId)).toMatchObject({ traces: 1, generations: 4, tools: 2 });
	});

	test("the CLI: a summary per host; bad options exit 2", async () => {
		// async: the receiver answers from this process
		const run = async (...args: string[]) => {
			const child = Bun.spawn([process.execPath, resolve(import.meta.dir, "../langfuse.ts"), "import", ...args], { env: { PATH: process.env.PATH, HOME: root, ...env() }, stdout: "pipe", stderr: "pipe" });
			const stdout = await new Response(child.stdout).text();
			return { status: await child.exited, stdout };
		};
		const dry = await run("--dry-run", "--host", "pi", history);
		expect(dry.status).toBe(0);
		expect(dry.stdout).toContain("import (dry run: nothing sent): 1 session(s) read");
		expect(dry.stdout).toContain("pi       1 session(s), 2 trace(s), 12 observation(s); tokens 4600 in / 206 out, cost $0.014730");
		const real = await run("--since", "2026-01-01", history);
		expect(real.status).toBe(0);
		expect(real.stdout).toContain("5 session(s) read, 406.5 KB → 7 session(s), 12 trace(s), 75 observation(s); tokens 31300 in / 1313 out, cost $0.085365");
		expect(real.stdout).toContain(`all delivered to ${receiver.url}`);
		expect(new Set(receiver.spans.map(span => span.spanId)).size).toBe(75);
		expect((await run("--since", "2026-01-01", history)).stdout).toContain("skipped: 5 unchanged since the last import");
		expect((await run("--host", "cursor", history)).status).toBe(2);
		const missing = await run(join(root, "nowhere"));
		expect(missing).toEqual({ status: 1, stdout: expect.stringContaining(`${join(root, "nowhere")}: no such file or folder`) });
		expect((await run("--since", "yesterday-ish", history)).status).toBe(2);
	}, 60_000);
});

describe("a large history", () => {
	let receiver: Receiver;
	let root: string;
	useReceiver(started => (receiver = started));
	useTempDir("lf-import-big-", dir => (root = dir), "all");

	test("200 sessions: all arrive, and the heap stays bounded (the run feeds the exporter session by session)", async () => {
		const history = join(root, "history");
		// 100 pi sessions (2 prompts), 100 omp sessions (2 prompts) with a subagent session (1 prompt); 100 kB prompts
		const { bytes, sessions, traces } = generateHistory(history, 200, 100_000);
		expect({ bytes: bytes > 20_000_000, sessions, traces }).toEqual({ bytes: true, sessions: 300, traces: 500 });
		const child = Bun.spawn([process.execPath, resolve(import.meta.dir, "support/import-heap.ts"), history], {
			env: { PATH: process.env.PATH, HOME: root, LANGFUSE_PUBLIC_KEY: "pk-lf-test", LANGFUSE_SECRET_KEY: "sk-lf-test", LANGFUSE_HOST: receiver.url, LANGFUSE_SPOOL_DIR: join(root, "spool") },
			stdout: "pipe",
			stderr: "pipe",
		});
		const [stdout, stderr] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
		expect({ code: await child.exited, stderr }).toEqual({ code: 0, stderr: "" });
		const run = JSON.parse(stdout.trim().split("\n").pop()!);
		const mb = (n: number) => Math.round(n / 1e5) / 10;
		console.log(`import heap: before ${mb(run.before)} MB, peak +${mb(run.peak - run.before)} MB, after +${mb(run.after - run.before)} MB; history ${mb(bytes)} MB`);
		expect(run.totals).toMatchObject({ total: 200, done: 200, sessions: 300, traces: 500, observations: 3400, problems: [] });
		expect(new Set(receiver.spans.map(span => span.traceId)).size).toBe(500);
		expect(new Set(receiver.spans.map(span => span.spanId)).size).toBe(run.totals.observations);
		// never more than one pacing window queued, and the heap after GC well under the history's size
		expect(run.maxQueued).toBeLessThan(2_000);
		expect({ peakGrowthMb: mb(run.peak - run.before) < 15, leftMb: mb(run.after - run.before) < 5 }).toEqual({ peakGrowthMb: true, leftMb: true });
	}, 120_000);

	test("Ctrl-C halfway: the next run sends the rest, and the files already spooled are not read again", async () => {
		const history = join(root, "interrupted");
		const made = generateHistory(history, 200, 100_000);
		const env = { PATH: process.env.PATH!, HOME: root, LANGFUSE_PUBLIC_KEY: "pk-lf-test", LANGFUSE_SECRET_KEY: "sk-lf-test", LANGFUSE_HOST: receiver.url, LANGFUSE_SPOOL_DIR: join(root, "spool-2") };
		const cli = () => Bun.spawn([process.execPath, resolve(import.meta.dir, "../langfuse.ts"), "import", history], { env, stdout: "pipe", stderr: "pipe" });
		await receiver.reset();
		// Langfuse answers slowly: the run is still going when the user presses Ctrl-C
		await receiver.setMode({ stallMs: 400 });
		const first = cli();
		const markDir = join(root, "spool-2", "import");
		await receiver.waitFor(() => receiver.requests.length > 0 && existsSync(markDir) && readdirSync(markDir).length > 0, 30_000);
		first.kill("SIGINT");
		expect(await first.exited).not.toBe(0);
		await receiver.setMode("ok");
		const marks = readdirSync(markDir).filter(name => name.endsWith(".json")).length;
		expect(marks).toBeGreaterThan(0);
		expect(marks).toBeLessThan(200);
		const second = cli();
		const [stdout] = await Promise.all([new Response(second.stdout).text(), second.exited]);
		expect(stdout).toContain(`skipped: ${marks} unchanged since the last import`);
		// what the first run spooled (replayed) plus what the second read: every trace, once
		await receiver.waitFor(() => new Set(receiver.spans.map(span => span.traceId)).size === made.traces, 30_000);
		expect(readdirSync(join(root, "spool-2", "import")).filter(name => name.endsWith(".json")).length).toBe(200);
	}, 120_000);
});

describe("live and imported agree on ids (recorded omp and pi events + the session file of the same run)", () => {
	for (const host of ["omp", "pi"]) {
		test(`${host}: the import's traces and observations are the live run's`, async () => {
			const fixtures = resolve(import.meta.dir, "fixtures");
			const tmp = mkdtempSync(join(tmpdir(), "lf-import-ids-"));
			const keys = { LANGFUSE_PUBLIC_KEY: "pk-lf-test", LANGFUSE_SECRET_KEY: "sk-lf-test", LANGFUSE_HOST: "http://127.0.0.1:9", LANGFUSE_SPOOL_DIR: join(tmp, "spool"), LANGFUSE_FLUSH_MS: "600000" };
			const capture = (runtime: ReturnType<typeof createRuntime>) => {
				const ids = new Map<string, string>();
				runtime.exporter!.enqueue = record => void ids.set(`${record.traceId}/${record.id}`, record.type);
				runtime.exporter!.stop();
				return ids;
			};
			try {
				const liveRuntime = createRuntime(keys, { exitHook: false, replaySpool: false, write: () => {} });
				const live = capture(liveRuntime);
				await replay(readRecording(join(fixtures, `${host}-two-tools.jsonl`)), pi => attachPiHost(pi, liveRuntime));
				const importRuntime = createRuntime(keys, { exitHook: false, replaySpool: false, write: () => {} });
				const imported = capture(importRuntime);
				const file = join(tmp, `${host}.jsonl`);
				copyFileSync(join(fixtures, `${host}-two-tools.session.jsonl`), file);
				const result = await runImport(importRuntime, { paths: [file] });
				expect(result.traces).toBe(1);
				const kinds = (ids: Map<string, string>) => [...ids.values()].sort();
				// the same trace, and every observation the import makes is one the live run made (prompt, turns, calls, tools)
				expect([...imported.keys()].filter(key => !live.has(key))).toEqual([]);
				expect(kinds(imported)).toEqual(kinds(live).filter(kind => kind !== "event"));
			} finally {
				rmSync(tmp, { recursive: true, force: true });
			}
		});
	}
});
