// `bun langfuse.ts claude-hook` on transcripts recorded from the real Claude Code 2.1.332 (test/fixtures/claude-*),
// replayed hook by hook: before each recorded Stop/StopFailure/SubagentStop/SessionEnd the transcript holds what it
// held when that hook ran (`seen`), the hook gets the recorded stdin, and the local receiver plays Langfuse.
// The CLI runs as a subprocess, exactly as Claude Code runs it. LANGFUSE_TS picks the file under test.
import { describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ReceivedSpan, Receiver } from "./support/receiver.ts";
import { useReceiver, useTempDir } from "./support/rig.ts";
import { attr, io, json, sum, type } from "./support/spans.ts";

const LF = process.env.LANGFUSE_TS ?? new URL("../langfuse.ts", import.meta.url).pathname;
const FIX = new URL("./fixtures/", import.meta.url).pathname;
const BUN = process.execPath;
type Json = Record<string, any>;

let receiver: Receiver;
let root: string;
useReceiver(started => (receiver = started));
useTempDir("lf-claude-hook-", dir => (root = dir), "all");

const readJsonl = (file: string): Json[] =>
	readFileSync(file, "utf8")
		.split("\n")
		.filter(Boolean)
		.map(line => JSON.parse(line));

/** Runs the hook as Claude Code would: JSON on stdin; returns exit code and everything it printed. */
async function hook(stdin: Json, env: Record<string, string>): Promise<{ code: number; out: string }> {
	const child = Bun.spawn([BUN, LF, "claude-hook"], { stdin: new Blob([JSON.stringify(stdin)]), stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH ?? "", HOME: root, ...env } });
	const [out, err] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
	return { code: await child.exited, out: out + err };
}

/** Replays every end hook of a fixture; returns the sessions it wrote to and the mock's calls. */
async function replay(dir: string, env: Record<string, string>): Promise<{ sessions: string[]; runs: number }> {
	const work = join(root, dir);
	const hooks = readJsonl(join(FIX, dir, "hooks.jsonl"));
	const sessions = new Set<string>();
	let runs = 0;
	for (const h of hooks) {
		const event: string = h.stdin.hook_event_name;
		const seen = h.seen?.transcript_path;
		if (!["Stop", "StopFailure", "SubagentStop", "SessionEnd"].includes(event) || typeof seen !== "number") continue;
		const sid: string = h.stdin.session_id;
		sessions.add(sid);
		const lines = readFileSync(join(FIX, dir, `${sid}.jsonl`), "utf8").split("\n").filter(Boolean);
		const transcript = join(work, `${sid}.jsonl`);
		mkdirSync(work, { recursive: true });
		writeFileSync(transcript, `${lines.slice(0, seen).join("\n")}\n`);
		// the subagent files as they were: the meta file exists only once the agent ended
		const subs = join(FIX, dir, sid, "subagents");
		if (existsSync(subs)) {
			mkdirSync(join(work, sid, "subagents"), { recursive: true });
			for (const name of readdirSync(subs)) {
				if (name.endsWith(".meta.json") && h.subagentsFinished && !h.subagentsFinished[name]) continue;
				copyFileSync(join(subs, name), join(work, sid, "subagents", name));
			}
		}
		const stdin = { ...h.stdin, transcript_path: transcript, agent_transcript_path: h.stdin.agent_transcript_path && join(work, sid, "subagents", String(h.stdin.agent_transcript_path).split("/").at(-1) ?? "") };
		const result = await hook(stdin, env);
		runs++;
		expect(result).toEqual({ code: 0, out: "" });
	}
	return { sessions: [...sessions], runs };
}

const inSession = (sid: string) => receiver.spans.filter(span => attr(span, "session.id") === sid);
const ofType = (spans: ReceivedSpan[], kind: string) => spans.filter(span => type(span) === kind);
/** The last version of each span. */
const latest = (spans: ReceivedSpan[]) => [...new Map(spans.map(span => [span.spanId, span])).values()];
/** Langfuse's rule: input = every usage key containing "input", output = every key containing "output". */
const tokens = (generations: ReceivedSpan[], part: "input" | "output") =>
	sum(generations.flatMap(g => Object.entries(json(g, "langfuse.observation.usage_details") as Record<string, number>).filter(([key]) => key !== "total" && key.includes(part)).map(([, value]) => value)));

function env(name: string): Record<string, string> {
	return { LANGFUSE_PUBLIC_KEY: "pk-lf-hook", LANGFUSE_SECRET_KEY: "sk-lf-hook", LANGFUSE_HOST: receiver.url, LANGFUSE_SPOOL_DIR: join(root, `spool-${name}`) };
}

/** Nothing sent twice: each span id arrives once per end time (a prompt's root also goes out once at its start). */
function sentOnce(spans: ReceivedSpan[]): void {
	const seen = new Map<string, number>();
	for (const span of spans) seen.set(`${span.spanId}@${span.endNs}`, (seen.get(`${span.spanId}@${span.endNs}`) ?? 0) + 1);
	expect([...seen.entries()].filter(([, count]) => count > 1)).toEqual([]);
	for (const span of latest(spans)) if (type(span) !== "agent" || span.parentSpanId) expect(spans.filter(other => other.spanId === span.spanId).length).toBe(1);
}

describe("claude-hook replayed on recorded sessions", () => {
	test("one tool call: one trace, prompt → answer, two generations with the mock's usage (5m/1h split, no cost), one Bash tool", async () => {
		const { sessions, runs } = await replay("claude-tool", env("tool"));
		expect(runs).toBe(2);
		const spans = inSession(sessions[0]!);
		sentOnce(spans);
		const all = latest(spans);
		const roots = all.filter(span => !span.parentSpanId);
		expect(roots.length).toBe(1);
		expect(io(roots[0]!, "langfuse.trace.input")).toBe("Run a shell command that prints hi, then tell me what it printed.");
		expect(io(roots[0]!, "langfuse.trace.output")).toBe("Done. The tool said: hi");
		const calls = readJsonl(join(FIX, "claude-tool/mock.jsonl"));
		const generations = ofType(all, "generation");
		expect(generations.length).toBe(calls.length);
		for (const [i, g] of generations.sort((a, b) => a.startNs.localeCompare(b.startNs)).entries()) {
			const u = calls[i].usage;
			expect(json(g, "langfuse.observation.usage_details")).toEqual({
				input: u.input_tokens,
				input_cache_read: u.cache_read_input_tokens,
				input_cache_creation_5m: u.cache_creation.ephemeral_5m_input_tokens,
				input_cache_creation_1h: u.cache_creation.ephemeral_1h_input_tokens,
				output: u.output_tokens,
				total: u.input_tokens + u.output_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens,
			});
			expect(attr(g, "langfuse.observation.cost_details")).toBeUndefined();
			expect(attr(g, "langfuse.observation.model.name")).toBe("claude-opus-5-5");
		}
		expect(tokens(generations, "input")).toBe(sum(calls.map(c => c.usage.input_tokens + c.usage.cache_read_input_tokens + c.usage.cache_creation_input_tokens)));
		// tool definitions and messages in the chat format
		const input = io(generations[0]!, "langfuse.observation.input");
		expect(input.tools.map((t: Json) => t.function.name)).toContain("Bash");
		expect(input.messages[0].role).toBe("system");
		expect(input.messages.at(-1)).toEqual({ role: "user", content: "Run a shell command that prints hi, then tell me what it printed." });
		const [tool] = ofType(all, "tool");
		expect(tool!.name).toBe("Bash");
		expect(io(tool!, "langfuse.observation.input")).toEqual({ command: "echo hi", description: "Print hi" });
		expect(io(tool!, "langfuse.observation.output")).toBe("hi");
	});

	test("subagent, --resume and fork: each prompt once, subagent under its Agent call in the parent's session, fork's copy not resent", async () => {
		const { sessions } = await replay("claude-subagent-resume-fork", env("srf"));
		const [parent, fork] = sessions;
		const spans = inSession(parent!);
		sentOnce(spans);
		const all = latest(spans);
		const roots = all.filter(span => !span.parentSpanId);
		expect(roots.map(span => io(span, "langfuse.trace.input"))).toEqual(["SPAWN a subagent that runs echo hi, then tell me what it said.", "Now run echo hi yourself."]);
		const agentTool = ofType(all, "tool").find(span => span.name === "Agent")!;
		const agentSpan = ofType(all, "agent").find(span => span.parentSpanId === agentTool.spanId)!;
		expect(agentSpan.traceId).toBe(agentTool.traceId);
		const childGenerations = ofType(all, "generation").filter(g => g.parentSpanId === agentSpan.spanId);
		expect(childGenerations.length).toBe(2);
		expect(ofType(all, "tool").filter(t => t.parentSpanId === agentSpan.spanId).map(t => t.name)).toEqual(["Bash"]);
		// generations: main 1, 4, subagent 2, 3, resumed turn 1, 2 — and the fork's own two, in the fork's session
		const calls = readJsonl(join(FIX, "claude-subagent-resume-fork/mock.jsonl"));
		const forkSpans = latest(inSession(fork!));
		sentOnce(inSession(fork!));
		expect(forkSpans.filter(span => !span.parentSpanId).map(span => io(span, "langfuse.trace.input"))).toEqual(["THINK then FAIL: read the missing file."]);
		const generations = [...ofType(all, "generation"), ...ofType(forkSpans, "generation")];
		expect(generations.length).toBe(calls.filter(c => c.kind !== "side").length);
		expect(new Set(generations.map(g => g.spanId)).size).toBe(generations.length);
		const usedCalls = calls.filter(c => c.kind !== "side");
		expect(tokens(generations, "input")).toBe(sum(usedCalls.map(c => c.usage.input_tokens + c.usage.cache_read_input_tokens + c.usage.cache_creation_input_tokens)));
		expect(tokens(generations, "output")).toBe(sum(usedCalls.map(c => c.usage.output_tokens)));
		// the fork's failing tool is an ERROR
		const failed = ofType(forkSpans, "tool")[0]!;
		expect(attr(failed, "langfuse.observation.level")).toBe("ERROR");
		// no trace id repeats across the two sessions
		expect(forkSpans.filter(span => all.some(other => other.spanId === span.spanId))).toEqual([]);
	});

	test("background subagent: nothing at the first Stop; the prompt with its subagent and the notification turn later, once", async () => {
		const { sessions } = await replay("claude-background", env("bg"));
		const spans = inSession(sessions[0]!);
		sentOnce(spans);
		const all = latest(spans);
		expect(all.filter(span => !span.parentSpanId).map(span => String(io(span, "langfuse.trace.input")).slice(0, 19))).toEqual(["SPAWN a background ", "<task-notification>"]);
		const agentTool = ofType(all, "tool").find(span => span.name === "Agent")!;
		expect(ofType(all, "agent").filter(span => span.parentSpanId === agentTool.spanId).length).toBe(1);
		const calls = readJsonl(join(FIX, "claude-background/mock.jsonl")).filter(c => c.kind !== "side");
		expect(ofType(all, "generation").length).toBe(calls.length);
		expect(tokens(ofType(all, "generation"), "input")).toBe(sum(calls.map(c => c.usage.input_tokens + c.usage.cache_read_input_tokens + c.usage.cache_creation_input_tokens)));
	});

	test("API error (StopFailure): an ERROR trace whose generation has the error and no usage", async () => {
		const { sessions } = await replay("claude-api-error", env("err"));
		const all = latest(inSession(sessions[0]!));
		const root = all.find(span => !span.parentSpanId)!;
		expect(attr(root, "langfuse.observation.level")).toBe("ERROR");
		const [generation] = ofType(all, "generation");
		expect(attr(generation!, "langfuse.observation.status_message")).toBe("API Error: 400 mock: invalid_request_error");
		expect(attr(generation!, "langfuse.observation.usage_details")).toBeUndefined();
	});

	test("metadata_only mode applies: no prompt text, no tool output", async () => {
		const e = { ...env("meta"), LANGFUSE_EXPORT_MODE: "metadata_only" };
		const { sessions } = await replay("claude-parallel", e);
		const all = latest(inSession(sessions[0]!));
		expect(all.length).toBeGreaterThan(0);
		for (const span of all) {
			expect(attr(span, "langfuse.observation.input")).toBeUndefined();
			expect(attr(span, "langfuse.observation.output")).toBeUndefined();
		}
		expect(ofType(all, "tool").length).toBe(2);
	});
});

describe("the config applies as for every host", () => {
	const TOOL = "claude-tool/450b2925-bb80-4be5-918d-19ed1c2d49ae.jsonl";
	const stopFor = (transcript: string, sid: string) => ({ session_id: sid, transcript_path: transcript, hook_event_name: "Stop", cwd: root });
	test("redaction, tags and a trace-name prefix", async () => {
		const transcript = join(root, "secret.jsonl");
		const secret = "sk-ant-api03-" + "x".repeat(90);
		writeFileSync(transcript, readFileSync(join(FIX, TOOL), "utf8").replaceAll("Run a shell command that prints hi", `Use ${secret} and run a shell command that prints hi`).replaceAll("450b2925-bb80-4be5-918d-19ed1c2d49ae", "secret-session"));
		expect(await hook(stopFor(transcript, "secret-session"), { ...env("secret"), LANGFUSE_TAGS: "team-a,cli", LANGFUSE_TRACE_PREFIX: "cc: " })).toEqual({ code: 0, out: "" });
		const spans = inSession("secret-session");
		expect(spans.length).toBeGreaterThan(0);
		expect(JSON.stringify(spans)).not.toContain(secret);
		expect(JSON.stringify(spans)).toContain("[REDACTED]");
		const root_ = latest(spans).find(span => !span.parentSpanId)!;
		expect(attr(root_, "langfuse.trace.tags")).toEqual(["team-a", "cli", "claude-code"]);
		expect(attr(root_, "langfuse.trace.name")).toStartWith("cc: ");
	});
	test("sampled out: nothing sent, and the cursor still moves (a later run sends nothing either)", async () => {
		const transcript = join(root, "sampled.jsonl");
		writeFileSync(transcript, readFileSync(join(FIX, TOOL), "utf8").replaceAll("450b2925-bb80-4be5-918d-19ed1c2d49ae", "sampled-session"));
		const e = { ...env("sampled"), LANGFUSE_SAMPLE_RATE: "0" };
		expect(await hook(stopFor(transcript, "sampled-session"), e)).toEqual({ code: 0, out: "" });
		expect(await hook(stopFor(transcript, "sampled-session"), { ...e, LANGFUSE_SAMPLE_RATE: "1" })).toEqual({ code: 0, out: "" });
		expect(inSession("sampled-session")).toEqual([]);
	});
});

describe("a long history not read yet", () => {
	test("goes to a detached run: the hook returns silently, every prompt arrives once", async () => {
		// 60 copies of the one-tool session, chained (ids made unique): ~9 MB, more than a hook reads inline
		const source = readFileSync(join(FIX, "claude-tool/450b2925-bb80-4be5-918d-19ed1c2d49ae.jsonl"), "utf8").split("\n").filter(Boolean);
		const ids = /"((?:msg|toolu)_mock_[a-z0-9]+_\d+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"/g;
		let previous: string | null = null;
		const lines: string[] = [];
		for (let copy = 0; copy < 60; copy++) {
			let first = true;
			for (const line of source) {
				const row = JSON.parse(line.replace(ids, (all, id: string) => (id === "450b2925-bb80-4be5-918d-19ed1c2d49ae" ? all : `"${id}-${copy}"`)));
				if (row.type === "user" && first) {
					row.parentUuid = previous;
					first = false;
				}
				if (row.uuid) previous = row.uuid;
				lines.push(JSON.stringify(row));
			}
		}
		const transcript = join(root, "long.jsonl");
		writeFileSync(transcript, `${lines.join("\n")}\n`);
		expect(readFileSync(transcript).length).toBeGreaterThan(8_000_000);
		const sid = "450b2925-bb80-4be5-918d-19ed1c2d49ae";
		await receiver.reset();
		const stop = { session_id: sid, transcript_path: transcript, hook_event_name: "Stop", cwd: root };
		expect(await hook(stop, env("long"))).toEqual({ code: 0, out: "" });
		await receiver.waitFor(() => latest(inSession(sid)).filter(span => !span.parentSpanId).length === 60 && ofType(latest(inSession(sid)), "generation").length === 120, 60_000);
		// once the detached run has saved its cursor, a later hook run sends nothing again
		const cursorDir = join(root, "spool-long", "claude");
		const saved = () => existsSync(cursorDir) && readdirSync(cursorDir).some(name => name.endsWith(".json") && JSON.parse(readFileSync(join(cursorDir, name), "utf8")).offset === readFileSync(transcript).length);
		for (let waited = 0; !saved() && waited < 20_000; waited += 50) await Bun.sleep(50);
		expect(saved()).toBe(true);
		expect(await hook(stop, env("long"))).toEqual({ code: 0, out: "" });
		await Bun.sleep(300);
		sentOnce(inSession(sid));
		expect(ofType(latest(inSession(sid)), "generation").length).toBe(120);
	}, 90_000);
});

describe("a hook never hurts Claude Code", () => {
	const stop = (transcript: string) => ({ session_id: "s-1", transcript_path: transcript, hook_event_name: "Stop", cwd: root });
	test("receiver down, bad keys, garbage config, garbage stdin, unknown subcommand: exit 0, silent", async () => {
		const transcript = join(root, "down.jsonl");
		copyFileSync(join(FIX, "claude-tool/450b2925-bb80-4be5-918d-19ed1c2d49ae.jsonl"), transcript);
		const down = { ...env("down"), LANGFUSE_HOST: "http://127.0.0.1:9" };
		expect(await hook(stop(transcript), down)).toEqual({ code: 0, out: "" });
		// what was not confirmed waits in the spool
		expect(readdirSync(join(root, "spool-down")).filter(name => name.endsWith(".jsonl")).length).toBe(1);
		expect(await hook(stop(transcript), { ...env("bad"), LANGFUSE_SECRET_KEY: "nope", LANGFUSE_PUBLIC_KEY: "" })).toEqual({ code: 0, out: "" });
		expect(await hook(stop(transcript), { ...env("garbage"), LANGFUSE_HOST: "::not a url", LANGFUSE_SAMPLE_RATE: "abc", LANGFUSE_EXPORT_MODE: "??" })).toEqual({ code: 0, out: "" });
		const child = Bun.spawn([BUN, LF, "claude-hook"], { stdin: new Blob(["{not json"]), stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH ?? "", HOME: root, ...env("junk") } });
		expect([await child.exited, await new Response(child.stdout).text(), await new Response(child.stderr).text()]).toEqual([0, "", ""]);
		const unknown = Bun.spawn([BUN, LF, "claude-hook-v2"], { stdin: new Blob([JSON.stringify(stop(transcript))]), stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH ?? "", HOME: root } });
		expect([await unknown.exited, await new Response(unknown.stdout).text(), await new Response(unknown.stderr).text()]).toEqual([0, "", ""]);
	});
});
