// A Claude Code hook command for tests: `bun test/support/claude-hook-recorder.ts <log file>`.
// Appends one JSON line {t, stdin, env: CLAUDE_* vars, seen} to <log file>; `seen` = how many lines the
// transcript (and a subagent's transcript) held when the hook ran; subagentsFinished = {meta file: finished}. Prints nothing and exits 0, so it never
// changes the turn (a Stop hook exiting 2 would make Claude Code continue the conversation).
import { appendFileSync, readdirSync, readFileSync } from "node:fs";

const logFile = process.argv[2] ?? "hooks.jsonl";
let raw = "";
try {
	raw = readFileSync(0, "utf8");
} catch {
	/* no stdin */
}
let stdin: unknown = raw;
try {
	stdin = JSON.parse(raw);
} catch {
	/* keep raw text */
}
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith("CLAUDE")));
const seen: Record<string, number | string> = {};
const payload = (stdin && typeof stdin === "object" ? stdin : {}) as Record<string, unknown>;
for (const key of ["transcript_path", "agent_transcript_path"]) {
	const path = payload[key];
	if (typeof path !== "string") continue;
	try {
		seen[key] = readFileSync(path, "utf8").split("\n").filter(Boolean).length;
	} catch (e) {
		seen[key] = String((e as NodeJS.ErrnoException).code ?? e);
	}
}
// subagents' meta files (`finished` tells whether a background agent is done when this hook runs)
const metas: Record<string, unknown> = {};
if (typeof payload.transcript_path === "string") {
	const dir = payload.transcript_path.replace(/\.jsonl$/, "/subagents");
	try {
		for (const f of readdirSync(dir).filter(n => n.endsWith(".meta.json")))
			metas[f] = (JSON.parse(readFileSync(`${dir}/${f}`, "utf8")) as { finished?: unknown }).finished;
	} catch {
		/* no subagents */
	}
}
try {
	appendFileSync(logFile, JSON.stringify({ t: Date.now(), stdin, env, seen, subagentsFinished: metas }) + "\n");
} catch {
	/* never fail the hook */
}
process.exit(0);
