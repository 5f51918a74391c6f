// npm run check:langfuse — what Langfuse's OWN server stores from real omp, pi, OpenCode and Codex runs, and
// whether its web UI shows their generations as chat (issue 9's "Done when").
//
//   LANGFUSE_SRC=<langfuse/langfuse source> bun test/check-langfuse.ts [--out DIR] [--only omp,pi,opencode,codex,omp-session]
//                                                                       [--replay DIR]
//
// Without LANGFUSE_SRC it prints one "skipped" line and exits 0 (CI has no Langfuse source).
// 1. Runs the real hosts headless (test/support/hosts.ts) against the scripted mock LLM, each with a prompt that
//    makes two tool calls, the second failing, and LANGFUSE_FLUSH_MS=100 so one prompt spans several requests;
//    plus omp with LANGFUSE_TRACE_GROUPING=session over two processes of one session (the second `--continue`s).
//    Every OTLP / ingestion POST goes to DIR/<run>.requests.jsonl (receiver `requestLog`); what the host itself
//    recorded (session file, SQLite store, rollout) goes to DIR/<run>.host.json.
// 2. Replays each log through Langfuse's server code (../shared/langfuse-server/map.sh; override the folder with
//    LANGFUSE_SERVER_HARNESS) in v3, v3 with LF_S3_ORDER=reverse, v4 and dual (DIR/<run>.<mode>.json and .txt),
//    then its UI's chat parse (chat.sh → DIR/<run>.<mode>.chat.json).
// 3. Checks every property, prints a table (property × run → PASS/FAIL per mode, reasons below) and exits 1 on
//    any FAIL. `--replay DIR` skips step 1 and re-checks the logs of an earlier run.
// LANGFUSE_TS=<path> checks another copy of langfuse.ts.
import { Database } from "bun:sqlite";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { AgentRunResult } from "./support/hosts.ts";
import type { Receiver } from "./support/receiver.ts";

const SRC = process.env.LANGFUSE_SRC;
if (!SRC) {
	console.log("check:langfuse skipped: set LANGFUSE_SRC=<langfuse/langfuse source: packages/shared, worker/src, web/src> (see ../shared/langfuse-server/README.md)");
	process.exit(0);
}

const { runCodex, runOmp, runOpencode, runPi, sumUsage, REPO_ROOT } = await import("./support/hosts.ts");
const { startMockLlm } = await import("./support/mock-llm.ts");
const { startReceiver } = await import("./support/receiver.ts");
const { latest } = await import("./support/spans.ts");
type Json = Record<string, any>;

const args = process.argv.slice(2);
const flag = (name: string) => {
	const i = args.indexOf(name);
	return i >= 0 ? args[i + 1] : undefined;
};
const HARNESS = resolve(process.env.LANGFUSE_SERVER_HARNESS ?? join(REPO_ROOT, "../shared/langfuse-server"));
const LANGFUSE_TS = resolve(process.env.LANGFUSE_TS ?? join(REPO_ROOT, "langfuse.ts"));
const BUN = process.execPath;
if (!existsSync(join(SRC, "packages/shared/src/server/otel/OtelIngestionProcessor.ts")) || !existsSync(join(SRC, "web/src"))) {
	console.error(`check:langfuse: LANGFUSE_SRC=${SRC} lacks packages/shared/src/server/otel/OtelIngestionProcessor.ts or web/src (see ../shared/langfuse-server/README.md)`);
	process.exit(2);
}
for (const f of ["map.sh", "chat.sh"]) {
	if (existsSync(join(HARNESS, f))) continue;
	console.error(`check:langfuse: no ${join(HARNESS, f)} (Langfuse's server harness; set LANGFUSE_SERVER_HARNESS to its folder)`);
	process.exit(2);
}
const replayDir = flag("--replay");
const OUT = resolve(replayDir ?? flag("--out") ?? mkdtempSync(join(tmpdir(), "lf-check-langfuse-")));
mkdirSync(OUT, { recursive: true });
const RUNS = ["omp", "pi", "opencode", "codex", "omp-session"] as const;
type RunName = (typeof RUNS)[number];
const only = (flag("--only")?.split(",") ?? RUNS) as RunName[];
for (const name of only) if (!RUNS.includes(name)) throw new Error(`--only: unknown run ${name} (known: ${RUNS.join(",")})`);
const MODES = ["v3", "v3-rev", "v4", "dual"] as const;
type Mode = (typeof MODES)[number];

/** Two tool calls, the second failing (OpenCode: denied by a permission rule, its own way for a tool to fail). */
const TWO_TOOLS = "Run two commands: RUN<<echo one>> RUN<<cat /nonexistent-file>>";
const SECOND_PROMPT = "Thanks, that is all.";
const OPENCODE_CONFIG = {
	permission: { bash: { "*": "allow", "cat /nonexistent*": "deny" }, read: "allow", edit: "allow", external_directory: "allow" },
};

/** What the host itself recorded, plus what we sent last for the root (the trace's intended final fields). */
interface HostRecord {
	run: RunName;
	host: string;
	exitCode: number | null;
	sessionId?: string;
	/** The trace's input: the (first) prompt. */
	prompt: string;
	/** The final answer, from the host's own record. */
	answer?: string;
	/** A name the host gave the session (OpenCode's title), when it has one. */
	hostTitle?: string;
	generations: number;
	/** Tool names of every tool call, in order. */
	tools: string[];
	failedTools: number;
	/** Langfuse's UI rule: input = prompt tokens incl. cache reads/writes; output incl. reasoning. */
	input: number;
	output: number;
	/** Dollars; undefined when the host records no cost (Codex). */
	cost?: number;
	/** False when the host's record holds no tool definitions to show (Codex's rollout). */
	toolDefinitions?: false;
	/** The latest root span we sent: name, tags, user, session. */
	sent: { name?: string; tags?: string[]; userId?: string; sessionId?: string; roots: number; traces: number; requests: number };
}

// ---------------------------------------------------------------- 1. real runs

async function runHosts(): Promise<void> {
	const mock = await mockRef();
	const spoolRoot = mkdtempSync(join(tmpdir(), "lf-check-spool-"));
	try {
		for (const run of only) {
			const log = join(OUT, `${run}.requests.jsonl`);
			rmSync(log, { force: true });
			const receiver = await startReceiver({ requestLog: log });
			mock.reset();
			const env = (extra: Record<string, string> = {}) => ({
				LANGFUSE_PUBLIC_KEY: "pk-lf-check",
				LANGFUSE_SECRET_KEY: "sk-lf-check",
				LANGFUSE_HOST: receiver.url,
				LANGFUSE_SPOOL_DIR: join(spoolRoot, run),
				LANGFUSE_FLUSH_MS: "100",
				...extra,
			});
			const t0 = performance.now();
			rmSync(join(OUT, `${run}.host.json`), { force: true });
			let record: HostRecord;
			try {
				record = await runOne(run, receiver, env);
			} catch (error) {
				console.error(`!! ${run}: ${error instanceof Error ? error.message : String(error)}`);
				continue;
			} finally {
				await receiver.close();
			}
			writeFileSync(join(OUT, `${run}.host.json`), JSON.stringify(record, null, 1) + "\n");
			console.error(`ran ${run}: exit ${record.exitCode}, ${record.sent.requests} requests, ${record.generations} generations, ${record.tools.length} tools (${Math.round(performance.now() - t0)} ms)`);
		}
	} finally {
		rmSync(spoolRoot, { recursive: true, force: true });
	}
}

function sentOf(receiver: Receiver, sessionId?: string): HostRecord["sent"] {
	const spans = receiver.spans.filter(span => !sessionId || span.attributes["session.id"] === sessionId);
	const roots = spans.filter(span => !span.parentSpanId);
	const root = roots.at(-1);
	const a = root?.attributes ?? {};
	return {
		name: a["langfuse.trace.name"] as string | undefined,
		tags: a["langfuse.trace.tags"] as string[] | undefined,
		userId: (a["user.id"] ?? a["langfuse.user.id"]) as string | undefined,
		sessionId: (a["session.id"] ?? a["langfuse.session.id"]) as string | undefined,
		roots: latest(roots).length,
		traces: new Set(spans.map(span => span.traceId)).size,
		requests: receiver.requests.filter(r => r.method === "POST").length,
	};
}

/** omp / pi: the session file (tool results with isError are the failed calls). */
function agentRecord(run: RunName, host: string, result: AgentRunResult, prompt: string, receiver: Receiver): HostRecord {
	const session = result.session;
	const assistants = session?.assistants ?? [];
	const usage = sumUsage(result.usages);
	return {
		run,
		host,
		exitCode: result.code,
		sessionId: result.sessionId,
		prompt,
		answer: [...assistants].reverse().find(a => a.text)?.text,
		generations: assistants.length,
		tools: assistants.flatMap(a => a.toolCalls.map(call => call.name)),
		failedTools: (session?.messages ?? []).filter(m => m.role === "toolResult" && m.isError === true).length,
		input: usage.input + usage.cacheRead + usage.cacheWrite,
		output: usage.output,
		cost: usage.cost.total,
		sent: sentOf(receiver, result.sessionId),
	};
}

async function runOne(run: RunName, receiver: Receiver, env: (extra?: Record<string, string>) => Record<string, string>): Promise<HostRecord> {
	const mockUrl = (await mockRef()).url;
	if (run === "omp" || run === "pi") {
		const runner = run === "omp" ? runOmp : runPi;
		const result = await runner({ prompt: TWO_TOOLS, mockUrl, extensions: [LANGFUSE_TS], env: env(), timeoutMs: 60_000 });
		try {
			return agentRecord(run, run, result, TWO_TOOLS, receiver);
		} finally {
			result.cleanup();
		}
	}
	if (run === "omp-session") {
		const grouping = env({ LANGFUSE_TRACE_GROUPING: "session" });
		const first = await runOmp({ prompt: TWO_TOOLS, mockUrl, extensions: [LANGFUSE_TS], env: grouping, timeoutMs: 60_000 });
		try {
			// the second process continues the same session (same HOME and cwd → omp's session store)
			const second = await runOmp({ prompt: SECOND_PROMPT, mockUrl, extensions: [LANGFUSE_TS], env: grouping, home: first.home, cwd: first.cwd, args: ["--continue"], timeoutMs: 60_000 });
			const record = agentRecord(run, "omp", second, TWO_TOOLS, receiver);
			if (second.sessionId !== first.sessionId) throw new Error(`omp --continue made a new session ${second.sessionId} (first ${first.sessionId})`);
			record.exitCode = first.code || second.code;
			return record;
		} finally {
			first.cleanup();
		}
	}
	if (run === "opencode") {
		const result = await runOpencode({ prompt: TWO_TOOLS, mockUrl, pluginFile: LANGFUSE_TS, config: OPENCODE_CONFIG, env: env(), timeoutMs: 60_000 });
		try {
			const session = result.sessions.find(s => s.id === result.sessionId);
			const assistants = (session?.messages ?? []).filter(m => m.role === "assistant");
			const t = session?.tokens ?? { input: 0, output: 0, reasoning: 0, cacheRead: 0, cacheWrite: 0 };
			const parts = opencodeParts(result.dbFile, result.sessionId);
			const tools = parts.filter(p => p.type === "tool");
			const lastText = [...parts].reverse().find(p => p.type === "text" && p.messageRole === "assistant" && p.text);
			return {
				run,
				host: "opencode",
				exitCode: result.code,
				sessionId: result.sessionId,
				prompt: TWO_TOOLS,
				answer: lastText?.text,
				hostTitle: session?.title,
				generations: assistants.length,
				tools: tools.map(p => String(p.tool)),
				failedTools: tools.filter(p => p.state?.status === "error").length,
				input: t.input + t.cacheRead + t.cacheWrite,
				output: t.output + t.reasoning,
				cost: session?.cost,
				sent: sentOf(receiver, result.sessionId),
			};
		} finally {
			result.cleanup();
		}
	}
	// codex: notify runs after the turn, detached from codex exec; wait until its trace has arrived
	const result = await runCodex({ prompt: TWO_TOOLS, mockUrl, notify: [BUN, LANGFUSE_TS, "codex-notify"], env: env(), timeoutMs: 60_000 });
	try {
		const generations = () => receiver.spans.filter(s => s.attributes["session.id"] === result.threadId && s.attributes["langfuse.observation.type"] === "generation");
		await receiver.waitFor(() => new Set(generations().map(s => s.spanId)).size >= result.tokenUsages.length && receiver.spans.some(s => !s.parentSpanId && s.attributes["langfuse.trace.output"] !== undefined), 20_000).catch(() => undefined);
		await Bun.sleep(500);
		const calls = result.rollout.filter(r => r.type === "response_item" && /(^|_)call$/.test(String(r.payload?.type)) && r.payload?.type !== "tool_search_call");
		// Codex's own verdict on each tool item: item_completed {item: {id, status: "failed", exit_code}}
		const failed = new Set(
			result.rollout
				.filter(r => r.type === "event_msg" && r.payload?.type === "item_completed" && (r.payload.item?.status === "failed" || (typeof r.payload.item?.exit_code === "number" && r.payload.item.exit_code !== 0)))
				.map(r => String(r.payload.item.id)),
		);
		const u = result.tokenUsages.reduce((s, x) => ({ input: s.input + x.input_tokens, output: s.output + x.output_tokens }), { input: 0, output: 0 });
		return {
			run,
			host: "codex",
			toolDefinitions: false,
			exitCode: result.code,
			sessionId: result.threadId,
			prompt: TWO_TOOLS,
			answer: result.lastAgentMessages.at(-1),
			generations: result.tokenUsages.length,
			tools: calls.map(r => String(r.payload.name ?? r.payload.type)),
			failedTools: failed.size,
			input: u.input,
			output: u.output,
			cost: undefined,
			sent: sentOf(receiver, result.threadId),
		};
	} finally {
		result.cleanup();
	}
}

let mockInstance: Awaited<ReturnType<typeof startMockLlm>> | undefined;
async function mockRef() {
	mockInstance ??= await startMockLlm();
	return mockInstance;
}

/** OpenCode's parts (tool calls with their state, texts), read-only from its SQLite store. */
function opencodeParts(dbFile: string, sessionId?: string): Json[] {
	if (!sessionId || !existsSync(dbFile)) return [];
	const db = new Database(dbFile, { readonly: true });
	try {
		const rows = db
			.query("select p.data as data, m.data as message from part p join message m on m.id = p.message_id where p.session_id = ? order by p.time_created, p.id")
			.all(sessionId) as Json[];
		return rows.map(r => ({ ...JSON.parse(String(r.data)), messageRole: JSON.parse(String(r.message)).role }));
	} finally {
		db.close();
	}
}

// ---------------------------------------------------------------- 2. replays through Langfuse's code

function replay(run: RunName): void {
	const log = join(OUT, `${run}.requests.jsonl`);
	for (const mode of MODES) {
		const json = join(OUT, `${run}.${mode}.json`);
		rmSync(json, { force: true });
		const env = { ...process.env, LANGFUSE_SRC: SRC!, BUN, LF_S3_ORDER: mode === "v3-rev" ? "reverse" : "" };
		const map = Bun.spawnSync([join(HARNESS, "map.sh"), log, mode === "v3-rev" ? "v3" : mode, "--json", json], { env, stdout: "pipe", stderr: "pipe" });
		writeFileSync(join(OUT, `${run}.${mode}.txt`), map.stdout.toString() + map.stderr.toString());
		if (map.exitCode !== 0) continue;
		const chat = Bun.spawnSync([join(HARNESS, "chat.sh"), json], { env, stdout: "pipe", stderr: "pipe" });
		if (chat.exitCode === 0) writeFileSync(join(OUT, `${run}.${mode}.chat.json`), chat.stdout.toString());
		else writeFileSync(join(OUT, `${run}.${mode}.chat.err`), chat.stderr.toString());
	}
}

// ---------------------------------------------------------------- 3. checks

type Verdict = { ok: true } | { ok: false; why: string } | { skip: string };
const PASS: Verdict = { ok: true };
const fail = (why: string): Verdict => ({ ok: false, why });
const check = (ok: boolean, why: () => string): Verdict => (ok ? PASS : fail(why()));
const short = (v: unknown, n = 60) => {
	const s = typeof v === "string" ? v : JSON.stringify(v);
	return s === undefined ? "∅" : s.length > n ? JSON.stringify(s.slice(0, n)) + "…" : JSON.stringify(s);
};
/** A stored input/output as text: a JSON string literal is unwrapped once. */
const asText = (v: unknown): unknown => {
	if (typeof v !== "string") return v;
	try {
		const once = JSON.parse(v);
		return typeof once === "string" ? once : v;
	} catch {
		return v;
	}
};
const bag = (xs: string[]) => [...xs].sort().join(",");
const sumKeys = (u: Record<string, unknown> | undefined, word: string) =>
	Object.entries(u ?? {})
		.filter(([k]) => k.toLowerCase().includes(word))
		.reduce((a, [, v]) => a + Number(v), 0);

/** One stored observation, the same shape for v3 `observations` and v4 `events_full` rows. */
interface Obs {
	id: string;
	traceId: string;
	parent?: string;
	type: string;
	name: string;
	level: string;
	usage: Record<string, number>;
	cost: number;
	row: Json;
}
/** What the UI shows as the trace. */
interface TraceView {
	id: string;
	name?: string;
	input?: unknown;
	output?: unknown;
}

function views(map: Json, table: "legacy" | "events"): { traces: TraceView[]; obs: Obs[] } {
	if (table === "legacy") {
		const obs = (map.committed?.observations ?? []).map((o: Json) => ({
			id: o.id,
			traceId: o.trace_id,
			parent: o.parent_observation_id ?? undefined,
			type: o.type,
			name: o.name,
			level: o.level,
			usage: o.usage_details ?? {},
			cost: Number(o.total_cost ?? 0),
			row: o,
		}));
		const traces = (map.committed?.traces ?? []).map((t: Json) => ({ id: t.id, name: t.name, input: t.input, output: t.output }));
		return { traces, obs };
	}
	const rows: Json[] = map.committed?.events_full ?? [];
	const obs = rows.map(r => ({
		id: r.span_id,
		traceId: r.trace_id,
		parent: r.parent_span_id || undefined,
		type: r.type,
		name: r.name,
		level: r.level,
		usage: r.usage_details ?? {},
		cost: Number(r.cost_details?.total ?? 0),
		row: r,
	}));
	// the trace view, as map.ts evaluates Langfuse's EVENTS_AGGREGATION_FIELDS on the final rows
	const traces = [...new Set(rows.map(r => r.trace_id))].map(id => {
		const ev = rows.filter(r => r.trace_id === id);
		const argMaxIf = (col: string, cond: (r: Json) => boolean) => ev.filter(cond).sort((a, b) => a.event_ts - b.event_ts).at(-1)?.[col];
		const isRoot = (r: Json) => !r.parent_span_id;
		return {
			id,
			name: argMaxIf("trace_name", r => !!r.trace_name) || argMaxIf("name", r => (isRoot(r) || r.is_app_root) && !!r.name),
			input: argMaxIf("input", isRoot),
			output: argMaxIf("output", isRoot),
		};
	});
	return { traces, obs };
}

const PROPERTIES = [
	"requests accepted",
	"dual: direct write path",
	"one trace",
	"trace name is the final one",
	"trace input = prompt",
	"trace output = final answer",
	"v4 rows carry name/tags/user/session",
	"one row per span id",
	"no write-time ties",
	"generations = host",
	"tools = host",
	"ERROR levels = failed tools",
	"tokens (UI rule) = host",
	"cost = host",
	"chat: every generation as chat",
	"chat: tool calls recognised",
	"chat: tool definitions present",
	// issue 9 "What to build" items the runs can show; informational, not counted in the exit code
	"info: version field not ours",
	"info: no placeholder user id",
	"info: usage keys Langfuse prices",
	"info: cost split input/output",
] as const;
type Property = (typeof PROPERTIES)[number];
const isInfo = (p: Property) => p.startsWith("info: ");

/** Every usage key Langfuse's shipped price list prices (any model, any tier), plus `total`. */
const PRICED_KEYS = (() => {
	const keys = new Set<string>(["total"]);
	const file = join(SRC, "worker/src/constants/default-model-prices.json");
	if (!existsSync(file)) return keys;
	for (const model of JSON.parse(readFileSync(file, "utf8")) as Json[]) {
		for (const k of Object.keys(model.prices ?? {})) keys.add(k);
		for (const tier of model.pricingTiers ?? []) for (const k of Object.keys(tier.prices ?? {})) keys.add(k);
	}
	return keys;
})();

function checkMode(host: HostRecord, mode: Mode): Record<Property, Verdict> {
	const out = {} as Record<Property, Verdict>;
	const all = (v: Verdict) => {
		for (const p of PROPERTIES) out[p] = v;
		return out;
	};
	const file = join(OUT, `${host.run}.${mode}.json`);
	if (!existsSync(file)) {
		const text = existsSync(join(OUT, `${host.run}.${mode}.txt`)) ? readFileSync(join(OUT, `${host.run}.${mode}.txt`), "utf8").trim().split("\n").at(-1) : "";
		return all(fail(`map.sh failed: ${short(text, 100)}`));
	}
	const map: Json = JSON.parse(readFileSync(file, "utf8"));
	const isV4 = mode === "v4";
	const { traces, obs } = views(map, isV4 ? "events" : "legacy");
	const requests: Json[] = map.requests ?? [];

	const bad = requests.filter(r => r.verdict !== "accepted" && !String(r.verdict).startsWith("empty"));
	out["requests accepted"] = check(bad.length === 0 && !(map.rejected ?? []).length && requests.length > 0, () =>
		requests.length === 0 ? "no OTLP request logged" : bad.length ? `${bad.length}/${requests.length} rejected: ${short(bad[0].verdict)}` : `ingestion schema rejected ${map.rejected.length}: ${short(map.rejected[0])}`,
	);
	if (mode === "dual") {
		const notDirect = requests.filter(r => !String(r.writePath).startsWith("direct") && !String(r.verdict).startsWith("empty"));
		// map.sh replays every request with the FIRST logged request's x-langfuse-* headers: they must not vary
		const sent = logged(host.run);
		const lf = (l: Json) => JSON.stringify(Object.entries(l.headers ?? {}).filter(([k]) => k.startsWith("x-langfuse-")).sort());
		const varying = sent.filter(l => lf(l) !== lf(sent[0]!)).length;
		out["dual: direct write path"] = check(notDirect.length === 0 && varying === 0, () =>
			varying ? `${varying}/${sent.length} requests' x-langfuse-* headers differ from the first's (map.sh replays the first's)` : `${notDirect.length}/${requests.length} requests took "${notDirect[0].writePath}" (v4 UI sees them after a batch job)`,
		);
	} else out["dual: direct write path"] = { skip: "dual only" };

	out["one trace"] = check(traces.length === 1, () => `${traces.length} traces`);
	const trace = traces[0];
	const expectedName = host.hostTitle ?? host.sent.name;
	out["trace name is the final one"] = check(
		!!trace && trace.name === expectedName && (!host.hostTitle || host.sent.name === host.hostTitle),
		() => `stored ${short(trace?.name, 40)}, want ${short(expectedName, 40)}${host.hostTitle && host.sent.name !== host.hostTitle ? ` (last sent ${short(host.sent.name, 30)})` : ""}`,
	);
	out["trace input = prompt"] = check(!!trace && asText(trace.input) === host.prompt, () => `stored ${short(trace?.input)}`);
	out["trace output = final answer"] = check(!!trace && !!host.answer && asText(trace.output) === host.answer, () => `stored ${short(trace?.output)}, host ${short(host.answer)}`);

	if (isV4) {
		const rows = obs.map(o => o.row);
		const wantTags = bag(host.sent.tags ?? []);
		const miss = {
			name: rows.filter(r => r.trace_name !== expectedName).length,
			tags: rows.filter(r => bag(r.tags ?? []) !== wantTags).length,
			// no user sent (none known) → rows carry none either
			user: rows.filter(r => (r.user_id || undefined) !== (host.sent.userId || undefined)).length,
			session: rows.filter(r => r.session_id !== host.sent.sessionId || !r.session_id).length,
		};
		const missing = Object.entries(miss).filter(([, n]) => n > 0);
		out["v4 rows carry name/tags/user/session"] = check(missing.length === 0, () => `of ${rows.length} rows wrong/empty: ${missing.map(([k, n]) => `${k} ${n}`).join(", ")}${host.sent.userId ? "" : " (no user sent)"}`);
		const counts = new Map<string, number>();
		for (const o of obs) counts.set(o.id, (counts.get(o.id) ?? 0) + 1);
		const dup = [...counts].filter(([, n]) => n > 1);
		out["one row per span id"] = check(dup.length === 0, () => `${dup.length} span ids with several rows (e.g. ${obs.find(o => o.id === dup[0]![0])?.name} ×${dup[0]![1]})`);
	} else {
		out["v4 rows carry name/tags/user/session"] = { skip: "v4 only" };
		out["one row per span id"] = { skip: "v4 only (v3 keys by id)" };
	}
	const races: string[] = map.races ?? [];
	out["no write-time ties"] = check(races.length === 0, () => `${races.length} tie(s): ${short(races[0], 70)}`);

	const gens = obs.filter(o => o.type === "GENERATION");
	const tools = obs.filter(o => o.type === "TOOL");
	out["generations = host"] = check(gens.length === host.generations, () => `${gens.length} stored, host ${host.generations}`);
	out["tools = host"] = check(bag(tools.map(t => t.name)) === bag(host.tools), () => `stored [${bag(tools.map(t => t.name))}], host [${bag(host.tools)}]`);
	const errTools = tools.filter(t => t.level === "ERROR").length;
	const errOther = obs.filter(o => o.type !== "TOOL" && o.level === "ERROR").length;
	out["ERROR levels = failed tools"] = check(errTools === host.failedTools && errOther === 0, () => `${errTools} ERROR tools (host ${host.failedTools} failed)${errOther ? `, ${errOther} other ERROR` : ""}`);
	const input = gens.reduce((a, g) => a + sumKeys(g.usage, "input"), 0);
	const output = gens.reduce((a, g) => a + sumKeys(g.usage, "output"), 0);
	out["tokens (UI rule) = host"] = check(input === host.input && output === host.output, () => `in ${input}/out ${output}, host ${host.input}/${host.output}`);
	const cost = obs.reduce((a, o) => a + o.cost, 0);
	if (host.cost === undefined) out["cost = host"] = { skip: `${host.host} records no cost (stored ${cost})` };
	else out["cost = host"] = check(Math.abs(cost - host.cost) < 1e-9, () => `${cost.toPrecision(6)}, host ${host.cost!.toPrecision(6)}`);

	const chatFile = join(OUT, `${host.run}.${mode}.chat.json`);
	if (!existsSync(chatFile)) {
		const err = join(OUT, `${host.run}.${mode}.chat.err`);
		const why = fail(`chat.sh failed: ${short(existsSync(err) ? readFileSync(err, "utf8").trim().split("\n").at(-1) : "", 80)}`);
		for (const p of ["chat: every generation as chat", "chat: tool calls recognised", "chat: tool definitions present"] as const) out[p] = why;
	} else {
		const chat: Json[] = JSON.parse(readFileSync(chatFile, "utf8")).filter((r: Json) => r.table === (isV4 ? "v4" : "v3"));
		const asChat = chat.filter(r => r.canDisplayAsChat).length;
		out["chat: every generation as chat"] = check(chat.length > 0 && asChat === chat.length, () => `${asChat}/${chat.length} render as chat (in ${chat.filter(r => r.inputParsed).length}, out ${chat.filter(r => r.outputParsed).length} parse as ChatML)`);
		const calls = chat.flatMap(r => r.outputToolCalls as string[]);
		out["chat: tool calls recognised"] = check(bag(calls) === bag(host.tools), () => `${calls.length} of ${host.tools.length} tool calls recognised`);
		const withDefs = chat.filter(r => r.allTools > 0).length;
		out["chat: tool definitions present"] =
			host.toolDefinitions === false
				? { skip: `${host.host}'s record holds no tool definitions (${withDefs}/${chat.length} listed)` }
				: check(chat.length > 0 && withDefs === chat.length, () => `${withDefs}/${chat.length} generations list tool definitions`);
	}

	// ---- informational (issue 9 "What to build")
	const ours = logged(host.run)[0]?.body?.resourceSpans?.[0]?.scopeSpans?.[0]?.scope?.version;
	const versionRows: Json[] = isV4 ? obs.map(o => o.row) : [...(map.committed?.traces ?? []), ...(map.committed?.observations ?? [])];
	const withOurs = versionRows.filter(r => ours && r.version === ours).length;
	out["info: version field not ours"] = check(withOurs === 0, () => `version=${ours} (our own) on ${withOurs}/${versionRows.length} ${isV4 ? "rows" : "traces+observations"}`);
	const userRows: Json[] = isV4 ? obs.map(o => o.row) : (map.committed?.traces ?? []);
	const unknown = userRows.filter(r => r.user_id === "unknown").length;
	out["info: no placeholder user id"] = check(unknown === 0, () => `user_id "unknown" on ${unknown}/${userRows.length} ${isV4 ? "rows" : "traces"}`);
	const unpriced = [...new Set(gens.flatMap(g => Object.keys(g.usage)).filter(k => !PRICED_KEYS.has(k)))];
	out["info: usage keys Langfuse prices"] = check(unpriced.length === 0, () => `not in default-model-prices.json: ${unpriced.join(", ")}`);
	const noSplit = gens.filter(g => {
		const keys = Object.keys(g.row.cost_details ?? {});
		return keys.length > 0 && !(keys.some(k => k.includes("input")) && keys.some(k => k.includes("output")));
	});
	out["info: cost split input/output"] = check(noSplit.length === 0, () => `${noSplit.length}/${gens.length} generations carry cost_details ${short(noSplit[0]!.row.cost_details)} only`);
	return out;
}

/** The logged OTLP requests of a run. */
function logged(run: string): Json[] {
	return readFileSync(join(OUT, `${run}.requests.jsonl`), "utf8")
		.split("\n")
		.filter(Boolean)
		.map(l => JSON.parse(l) as Json)
		.filter(l => l.path === "/api/public/otel/v1/traces");
}

// ---------------------------------------------------------------- main

if (!replayDir) {
	try {
		await runHosts();
	} finally {
		await mockInstance?.close();
	}
}
const hosts: HostRecord[] = [];
const missing: string[] = [];
for (const run of only) {
	const file = join(OUT, `${run}.host.json`);
	if (!existsSync(file)) {
		missing.push(run);
		continue;
	}
	hosts.push(JSON.parse(readFileSync(file, "utf8")));
	const t0 = performance.now();
	replay(run);
	console.error(`replayed ${run} in ${MODES.join(", ")} (${Math.round(performance.now() - t0)} ms)`);
}

let failures = 0;
const cellOf = (v: Verdict) => ("skip" in v ? "-" : v.ok ? "PASS" : "FAIL");
const lines: string[] = [];
const pad = (s: string, n: number) => s.padEnd(n);
const RUN_COL = 32;
lines.push(`${pad("property", 38)}${pad("runs", RUN_COL)}${MODES.map(m => pad(m, 7)).join("")}`);
const results = hosts.map(h => ({ h, byMode: Object.fromEntries(MODES.map(m => [m, checkMode(h, m)])) as Record<Mode, Record<Property, Verdict>> }));
for (const h of hosts) if (h.exitCode !== 0) lines.push(`!! ${h.run}: the host exited ${h.exitCode}`);
for (const run of missing) lines.push(`!! ${run}: no run to check (no ${run}.host.json: the run failed, see above)`);
for (const p of PROPERTIES) {
	if (p === PROPERTIES.find(isInfo)) lines.push(`-- informational (issue 9 "What to build"; not counted in the exit code):`);
	// runs with the same PASS/FAIL cells share a row; a reason shared by several runs and modes is printed once
	const rows = new Map<string, string[]>();
	const reasons = new Map<string, { runs: string[]; modes: string; why: string }>();
	for (const { h, byMode } of results) {
		const cells = MODES.map(m => byMode[m][p]);
		if (cells.every(c => "skip" in c)) continue;
		const sig = cells.map(cellOf).map(c => pad(c, 7)).join("");
		rows.set(sig, [...(rows.get(sig) ?? []), h.run]);
		const byWhy = new Map<string, Mode[]>();
		for (const m of MODES) {
			const v = byMode[m][p];
			if ("ok" in v && !v.ok) {
				if (!isInfo(p)) failures++;
				byWhy.set(v.why, [...(byWhy.get(v.why) ?? []), m]);
			}
		}
		for (const [why, modes] of byWhy) {
			const key = `${modes.join(",")}\u0000${why}`;
			const r = reasons.get(key) ?? reasons.set(key, { runs: [], modes: modes.join(","), why }).get(key)!;
			r.runs.push(h.run);
		}
	}
	for (const [sig, runs] of rows) lines.push(`${pad(p, 38)}${pad(runs.length === results.length && results.length > 1 ? "all" : runs.join(","), RUN_COL)}${sig}`.trimEnd());
	for (const r of reasons.values()) lines.push(`    ${r.runs.join(",")} ${r.modes}: ${r.why}`);
}
for (const h of hosts) if (h.exitCode !== 0) failures++;
failures += missing.length;
console.log(lines.join("\n"));
console.log(`\ncheck:langfuse: ${failures ? `${failures} FAIL` : "all PASS"} (property × run × mode; "-" = not applicable) — logs, host records, map JSON/text and chat JSON in ${OUT}`);
process.exit(failures ? 1 : 0);
