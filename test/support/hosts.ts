// Runners that drive the real host binaries headless, each in a throwaway HOME, against the mock LLM.
//
//   runOmp      omp -p --model mock/mock-model [-e ext]... <prompt>
//   runPi       pi -p --offline --model mock/mock-model [-e ext]... <prompt>
//   runOpencode opencode run --print-logs <words...>   (in a temp project with opencode.json)
//   runCodex    codex exec --skip-git-repo-check <prompt>   (CODEX_HOME=<tmp>/codex)
//
// Every run: a minimal environment (PATH with <repo>/node_modules/.bin first, HOME, TMPDIR, plus the
// given vars; nothing else of the caller leaks in), stdout/stderr captured to files under the run's
// temp root, a hard timeout that SIGKILLs the whole process group, and `cleanup()` to delete the
// temp root (set LF_KEEP_TMP=1 to keep it).
import type { Subprocess } from "bun";
import { Database } from "bun:sqlite";
import {
	closeSync,
	copyFileSync,
	existsSync,
	mkdirSync,
	mkdtempSync,
	openSync,
	readdirSync,
	readFileSync,
	rmSync,
	statSync,
	writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";

export const REPO_ROOT = resolve(import.meta.dir, "../..");
export const BIN_DIR = join(REPO_ROOT, "node_modules/.bin");

type Json = Record<string, any>;

// ---------------------------------------------------------------- process runner

export interface ProcessOptions {
	cwd: string;
	/** The complete environment of the child (see minimalEnv). */
	env: Record<string, string>;
	/** Directory for stdout.txt / stderr.txt. */
	logDir: string;
	/** Hard timeout; the process group gets SIGKILL (default 60 s). */
	timeoutMs?: number;
	/** Aborting kills the process group with SIGKILL. */
	signal?: AbortSignal;
	/** Called right after spawn (e.g. to `process.kill(child.pid, "SIGKILL")` later). */
	onSpawn?: (child: Subprocess) => void;
	/** Text written to the child's stdin (default: stdin is /dev/null). */
	stdin?: string;
	/** Also SIGKILL the process group after a normal exit (default false: leftovers may live on). */
	killGroupOnExit?: boolean;
}

export interface ProcessResult {
	/** Exit code; null when the process died from a signal. */
	code: number | null;
	/** e.g. "SIGKILL" when killed by a signal. */
	signalCode: string | null;
	timedOut: boolean;
	aborted: boolean;
	stdout: string;
	stderr: string;
	/** Wall time from spawn to exit. */
	ms: number;
	pid: number;
	argv: string[];
	stdoutFile: string;
	stderrFile: string;
}

function killGroup(pid: number, sig: NodeJS.Signals = "SIGKILL"): void {
	try {
		process.kill(-pid, sig);
	} catch {
		try {
			process.kill(pid, sig);
		} catch {
			/* already gone */
		}
	}
}

/** Spawn argv in its own process group with a hard timeout; output goes to files (no pipe hangs). */
export async function runProcess(argv: string[], o: ProcessOptions): Promise<ProcessResult> {
	mkdirSync(o.logDir, { recursive: true });
	const stdoutFile = join(o.logDir, "stdout.txt");
	const stderrFile = join(o.logDir, "stderr.txt");
	const outFd = openSync(stdoutFile, "w");
	const errFd = openSync(stderrFile, "w");
	const t0 = performance.now();
	let child: Subprocess;
	try {
		child = Bun.spawn({
			cmd: argv,
			cwd: o.cwd,
			env: o.env,
			stdin: o.stdin !== undefined ? new Blob([o.stdin]) : "ignore",
			stdout: outFd,
			stderr: errFd,
			detached: true,
		});
	} finally {
		closeSync(outFd);
		closeSync(errFd);
	}
	let timedOut = false;
	let aborted = false;
	const timer = setTimeout(() => {
		timedOut = true;
		killGroup(child.pid);
	}, o.timeoutMs ?? 60_000);
	const onAbort = () => {
		aborted = true;
		killGroup(child.pid);
	};
	if (o.signal) {
		if (o.signal.aborted) onAbort();
		else o.signal.addEventListener("abort", onAbort, { once: true });
	}
	try {
		o.onSpawn?.(child);
	} catch {
		/* the test's problem */
	}
	await child.exited;
	const ms = Math.round(performance.now() - t0);
	clearTimeout(timer);
	o.signal?.removeEventListener("abort", onAbort);
	if (timedOut || aborted || o.killGroupOnExit) killGroup(child.pid);
	return {
		code: child.signalCode ? null : child.exitCode,
		signalCode: child.signalCode === null || child.signalCode === undefined ? null : String(child.signalCode),
		timedOut,
		aborted,
		stdout: readFileSync(stdoutFile, "utf8"),
		stderr: readFileSync(stderrFile, "utf8"),
		ms,
		pid: child.pid,
		argv,
		stdoutFile,
		stderrFile,
	};
}

/** PATH with the repo's node_modules/.bin first, HOME, TMPDIR, quiet terminal settings, plus extra. */
export function minimalEnv(home: string, tmp: string, extra: Record<string, string | undefined> = {}): Record<string, string> {
	const env: Record<string, string> = {
		PATH: `${BIN_DIR}:/usr/local/bin:/usr/bin:/bin`,
		HOME: home,
		TMPDIR: tmp,
		LANG: "C.UTF-8",
		TERM: "dumb",
		NO_COLOR: "1",
	};
	for (const [k, v] of Object.entries(extra)) {
		if (v === undefined) delete env[k];
		else env[k] = v;
	}
	return env;
}

// ---------------------------------------------------------------- common options / results

export interface RunOptions {
	prompt: string;
	/** The mock's base URL ending in /v1 (MockLlm.url). */
	mockUrl: string;
	/** Extra environment variables (undefined removes one). */
	env?: Record<string, string | undefined>;
	/** Working directory (created if missing); default <root>/cwd (OpenCode: <root>/proj). */
	cwd?: string;
	/** Reuse a HOME (e.g. a second run against the same session store); config files are rewritten. */
	home?: string;
	/** Extra CLI arguments, placed before the prompt. */
	args?: string[];
	/** Hard timeout in ms (default 60 000); the process group gets SIGKILL. */
	timeoutMs?: number;
	signal?: AbortSignal;
	onSpawn?: (child: Subprocess) => void;
	killGroupOnExit?: boolean;
}

export interface RunResult extends ProcessResult {
	/** Temp root holding home/, cwd/, logs/ (unless home/cwd were given). */
	root: string;
	home: string;
	cwd: string;
	/** The environment the host ran with. */
	env: Record<string, string>;
	/** Delete the temp root (not a given home/cwd). No-op with LF_KEEP_TMP=1. */
	cleanup(): void;
}

interface Layout {
	root: string;
	home: string;
	cwd: string;
	tmp: string;
	logs: string;
	startedAt: number;
	cleanup(): void;
}

function layout(prefix: string, o: { home?: string; cwd?: string }, cwdName = "cwd"): Layout {
	const root = mkdtempSync(join(tmpdir(), `lf-${prefix}-`));
	const home = o.home ?? join(root, "home");
	const cwd = o.cwd ?? join(root, cwdName);
	const tmp = join(root, "tmp");
	const logs = join(root, "logs");
	for (const d of [home, cwd, tmp, logs]) mkdirSync(d, { recursive: true });
	return {
		root,
		home,
		cwd,
		tmp,
		logs,
		startedAt: Date.now(),
		cleanup() {
			if (process.env.LF_KEEP_TMP === "1") return;
			rmSync(root, { recursive: true, force: true });
		},
	};
}

function walk(dir: string, pred: (path: string) => boolean, out: string[] = []): string[] {
	let entries: import("node:fs").Dirent[];
	try {
		entries = readdirSync(dir, { withFileTypes: true });
	} catch {
		return out;
	}
	for (const e of entries) {
		const p = join(dir, e.name);
		if (e.isDirectory()) walk(p, pred, out);
		else if (pred(p)) out.push(p);
	}
	return out;
}

function readJsonl(file: string): Json[] {
	const out: Json[] = [];
	let text = "";
	try {
		text = readFileSync(file, "utf8");
	} catch {
		return out;
	}
	for (const line of text.split("\n")) {
		if (!line.trim()) continue;
		try {
			out.push(JSON.parse(line) as Json);
		} catch {
			/* partial last line */
		}
	}
	return out;
}

const num = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) ? v : 0);

// ---------------------------------------------------------------- omp / pi sessions

/** Usage as omp/pi record it on assistant messages (input EXCLUDES cached tokens). */
export interface AgentUsage {
	input: number;
	output: number;
	cacheRead: number;
	cacheWrite: number;
	totalTokens: number;
	cost: { input: number; output: number; cacheRead: number; cacheWrite: number; total: number };
}

export interface AssistantRecord {
	entryId?: string;
	responseId?: string;
	provider?: string;
	model?: string;
	api?: string;
	stopReason?: string;
	text: string;
	toolCalls: { id: string; name: string; arguments: unknown }[];
	usage: AgentUsage;
	timestamp?: number;
}

export interface AgentSession {
	file: string;
	id: string;
	/** Subagent sessions (omp task tool) name their parent's session file. */
	parentSession?: string;
	cwd?: string;
	/** Every JSON line of the session file. */
	entries: Json[];
	/** The `message` payloads of `type:"message"` entries, in order. */
	messages: Json[];
	assistants: AssistantRecord[];
}

export interface AgentRunResult extends RunResult {
	/** The top-level session of this run (newest session without a parent). */
	sessionId?: string;
	sessionFile?: string;
	session?: AgentSession;
	/** All sessions written during this run, subagents included. */
	sessions: AgentSession[];
	/** Usage of each assistant message of the top-level session. */
	usages: AgentUsage[];
	/** Usage of each assistant message of every session (subagents included). */
	allUsages: AgentUsage[];
}

function parseUsage(u: Json | undefined): AgentUsage {
	const c: Json = u?.cost ?? {};
	return {
		input: num(u?.input),
		output: num(u?.output),
		cacheRead: num(u?.cacheRead),
		cacheWrite: num(u?.cacheWrite),
		totalTokens: num(u?.totalTokens),
		cost: { input: num(c.input), output: num(c.output), cacheRead: num(c.cacheRead), cacheWrite: num(c.cacheWrite), total: num(c.total) },
	};
}

/** Read an omp / pi session file (JSONL: header `{type:"session", id, parentSession?}`, then entries). */
export function readAgentSession(file: string): AgentSession {
	const entries = readJsonl(file);
	const header = entries.find(e => e.type === "session") ?? {};
	const messages: Json[] = [];
	const assistants: AssistantRecord[] = [];
	for (const e of entries) {
		if (e.type !== "message" || !e.message) continue;
		messages.push(e.message as Json);
		const m = e.message as Json;
		if (m.role !== "assistant") continue;
		const content: Json[] = Array.isArray(m.content) ? m.content : [];
		assistants.push({
			entryId: e.id,
			responseId: m.responseId,
			provider: m.provider,
			model: m.model,
			api: m.api,
			stopReason: m.stopReason,
			text: content
				.filter(c => c?.type === "text")
				.map(c => String(c.text ?? ""))
				.join(""),
			toolCalls: content.filter(c => c?.type === "toolCall").map(c => ({ id: String(c.id), name: String(c.name), arguments: c.arguments })),
			usage: parseUsage(m.usage),
			timestamp: m.timestamp,
		});
	}
	const s: AgentSession = { file, id: String(header.id ?? ""), entries, messages, assistants };
	if (typeof header.parentSession === "string") s.parentSession = header.parentSession;
	if (typeof header.cwd === "string") s.cwd = header.cwd;
	return s;
}

function collectAgentSessions(sessionsDir: string, since: number): Pick<AgentRunResult, "sessionId" | "sessionFile" | "session" | "sessions" | "usages" | "allUsages"> {
	const files = walk(sessionsDir, p => p.endsWith(".jsonl"))
		.map(f => ({ f, mtime: statSync(f).mtimeMs }))
		.filter(x => x.mtime >= since - 1000)
		.sort((a, b) => a.mtime - b.mtime);
	const sessions = files.map(x => readAgentSession(x.f)).filter(s => s.id);
	const tops = sessions.filter(s => !s.parentSession);
	const session = tops[tops.length - 1];
	return {
		sessionId: session?.id,
		sessionFile: session?.file,
		session,
		sessions,
		usages: session ? session.assistants.map(a => a.usage) : [],
		allUsages: sessions.flatMap(s => s.assistants.map(a => a.usage)),
	};
}

/** Sum omp/pi usages (cost.total included). */
export function sumUsage(usages: AgentUsage[]): AgentUsage {
	const t = parseUsage(undefined);
	for (const u of usages) {
		t.input += u.input;
		t.output += u.output;
		t.cacheRead += u.cacheRead;
		t.cacheWrite += u.cacheWrite;
		t.totalTokens += u.totalTokens;
		t.cost.input += u.cost.input;
		t.cost.output += u.cost.output;
		t.cost.cacheRead += u.cost.cacheRead;
		t.cost.cacheWrite += u.cost.cacheWrite;
		t.cost.total += u.cost.total;
	}
	return t;
}

/** Per-million prices of the mock models (as configured for every host). */
export const MOCK_PRICES = { input: 3, output: 15, cacheRead: 0.3, cacheWrite: 3.75 } as const;

function agentModels(mockUrl: string, api: "omp" | "pi"): Json {
	const model = (id: string, name: string) => ({
		id,
		name,
		reasoning: false,
		input: ["text"],
		contextWindow: 128000,
		maxTokens: 4096,
		cost: { ...MOCK_PRICES },
	});
	const compat = api === "pi" ? { compat: { supportsDeveloperRole: false, supportsReasoningEffort: false } } : {};
	return {
		providers: {
			mock: { baseUrl: mockUrl, apiKey: "sk-mock-dummy", api: "openai-completions", ...compat, models: [model("mock-model", "Mock Model")] },
			mockresp: { baseUrl: mockUrl, apiKey: "sk-mock-dummy", api: "openai-responses", models: [model("mock-resp-model", "Mock Responses Model")] },
		},
	};
}

export interface OmpRunOptions extends RunOptions {
	/** Paths passed with -e. */
	extensions?: string[];
	/** Copied to <HOME>/.omp/agent/extensions/<basename> (auto-discovered). */
	installExtension?: string;
	/** "mock/mock-model" (chat completions, default) or "mockresp/mock-resp-model" (responses API). */
	model?: string;
	/**
	 * Extra keys for <HOME>/.omp/agent/config.yml. Defaults: local providers disabled, no update check,
	 * and `async.enabled: false` so the task tool blocks until subagents finish (with omp's default
	 * async tasks, print mode exits before a spawned subagent runs).
	 */
	config?: Json;
}

/** Run `omp -p` once. Sessions: <HOME>/.omp/agent/sessions/<cwd-slug>/<ts>_<id>.jsonl (+ <that>/<Child>.jsonl). */
export async function runOmp(o: OmpRunOptions): Promise<AgentRunResult> {
	const l = layout("omp", o);
	const agentDir = join(l.home, ".omp/agent");
	mkdirSync(agentDir, { recursive: true });
	// JSON is valid YAML.
	writeFileSync(join(agentDir, "models.yml"), JSON.stringify(agentModels(o.mockUrl, "omp"), null, 2) + "\n");
	const config = {
		disabledProviders: ["ollama", "llama.cpp", "lm-studio"],
		startup: { checkUpdate: false },
		async: { enabled: false },
		...o.config,
	};
	writeFileSync(join(agentDir, "config.yml"), JSON.stringify(config, null, 2) + "\n");
	if (o.installExtension) {
		const dir = join(agentDir, "extensions");
		mkdirSync(dir, { recursive: true });
		copyFileSync(o.installExtension, join(dir, basename(o.installExtension)));
	}
	const argv = ["omp", "-p", "--model", o.model ?? "mock/mock-model"];
	for (const e of o.extensions ?? []) argv.push("-e", e);
	argv.push(...(o.args ?? []), o.prompt);
	const env = minimalEnv(l.home, l.tmp, o.env);
	const p = await runProcess(argv, { cwd: l.cwd, env, logDir: l.logs, timeoutMs: o.timeoutMs, signal: o.signal, onSpawn: o.onSpawn, killGroupOnExit: o.killGroupOnExit });
	return { ...p, root: l.root, home: l.home, cwd: l.cwd, env, cleanup: l.cleanup, ...collectAgentSessions(join(agentDir, "sessions"), l.startedAt) };
}

export interface PiRunOptions extends RunOptions {
	extensions?: string[];
	/** Copied to <HOME>/.pi/agent/extensions/<basename>. */
	installExtension?: string;
	model?: string;
}

/** Run `pi -p --offline` once. Sessions: <HOME>/.pi/agent/sessions/--<cwd-with-dashes>--/<ts>_<id>.jsonl. */
export async function runPi(o: PiRunOptions): Promise<AgentRunResult> {
	const l = layout("pi", o);
	const agentDir = join(l.home, ".pi/agent");
	mkdirSync(agentDir, { recursive: true });
	writeFileSync(join(agentDir, "models.json"), JSON.stringify(agentModels(o.mockUrl, "pi"), null, 2) + "\n");
	if (o.installExtension) {
		const dir = join(agentDir, "extensions");
		mkdirSync(dir, { recursive: true });
		copyFileSync(o.installExtension, join(dir, basename(o.installExtension)));
	}
	const argv = ["pi", "-p", "--offline", "--model", o.model ?? "mock/mock-model"];
	for (const e of o.extensions ?? []) argv.push("-e", e);
	argv.push(...(o.args ?? []), o.prompt);
	const env = minimalEnv(l.home, l.tmp, { PI_OFFLINE: "1", ...o.env });
	const p = await runProcess(argv, { cwd: l.cwd, env, logDir: l.logs, timeoutMs: o.timeoutMs, signal: o.signal, onSpawn: o.onSpawn, killGroupOnExit: o.killGroupOnExit });
	return { ...p, root: l.root, home: l.home, cwd: l.cwd, env, cleanup: l.cleanup, ...collectAgentSessions(join(agentDir, "sessions"), l.startedAt) };
}

// ---------------------------------------------------------------- OpenCode

export interface OpencodeTokens {
	input: number;
	output: number;
	reasoning: number;
	cacheRead: number;
	cacheWrite: number;
}

export interface OpencodeMessage {
	id: string;
	role: string;
	parentID?: string;
	cost: number;
	tokens: OpencodeTokens;
	finish?: string;
	modelID?: string;
	providerID?: string;
	data: Json;
}

export interface OpencodeSession {
	id: string;
	parentId?: string;
	title: string;
	directory: string;
	/** OpenCode's own cumulative totals (session row). */
	cost: number;
	tokens: OpencodeTokens;
	messages: OpencodeMessage[];
}

export interface OpencodeRunResult extends RunResult {
	/** The top-level session (no parent) of this run. */
	sessionId?: string;
	sessions: OpencodeSession[];
	/** <HOME>/.local/share/opencode/opencode.db */
	dbFile: string;
}

export interface OpencodeRunOptions extends RunOptions {
	/** Copied into <project>/.opencode/plugin/<basename>. */
	pluginFile?: string;
	/** Shallow-merged into the generated opencode.json (e.g. {plugin: [["./x.ts", {opts}]]}). */
	config?: Json;
	/** How to pass the prompt: as separate words (default; OpenCode joins them with spaces) or on stdin. */
	promptVia?: "words" | "stdin";
}

function tokensOf(t: Json | undefined): OpencodeTokens {
	return {
		input: num(t?.input),
		output: num(t?.output),
		reasoning: num(t?.reasoning),
		cacheRead: num(t?.cache?.read),
		cacheWrite: num(t?.cache?.write),
	};
}

/** Read OpenCode's SQLite store (sessions updated at or after `since`, ms). */
export function readOpencodeSessions(dbFile: string, since = 0): OpencodeSession[] {
	if (!existsSync(dbFile)) return [];
	const db = new Database(dbFile, { readonly: true });
	try {
		const rows = db
			.query(
				"select id, parent_id, title, directory, cost, tokens_input, tokens_output, tokens_reasoning, tokens_cache_read, tokens_cache_write, time_created from session where time_updated >= ? order by time_created",
			)
			.all(since) as Json[];
		const msgQuery = db.query("select id, data from message where session_id = ? order by time_created, id");
		return rows.map(r => {
			const messages = (msgQuery.all(r.id) as Json[]).map(m => {
				let data: Json = {};
				try {
					data = JSON.parse(String(m.data)) as Json;
				} catch {
					/* keep {} */
				}
				const msg: OpencodeMessage = { id: String(m.id), role: String(data.role ?? ""), cost: num(data.cost), tokens: tokensOf(data.tokens), data };
				if (data.parentID) msg.parentID = data.parentID;
				if (data.finish) msg.finish = data.finish;
				if (data.modelID) msg.modelID = data.modelID;
				if (data.providerID) msg.providerID = data.providerID;
				return msg;
			});
			const s: OpencodeSession = {
				id: String(r.id),
				title: String(r.title ?? ""),
				directory: String(r.directory ?? ""),
				cost: num(r.cost),
				tokens: {
					input: num(r.tokens_input),
					output: num(r.tokens_output),
					reasoning: num(r.tokens_reasoning),
					cacheRead: num(r.tokens_cache_read),
					cacheWrite: num(r.tokens_cache_write),
				},
				messages,
			};
			if (r.parent_id) s.parentId = String(r.parent_id);
			return s;
		});
	} finally {
		db.close();
	}
}

const OPENCODE_LOCK = JSON.stringify({ lockfileVersion: 3, packages: { "": { dependencies: { "@opencode-ai/plugin": "*" } } } });

/** Pretend the config dir's `@opencode-ai/plugin` install already happened (else: npm install, 7-70 s). */
function skipPluginInstall(configDir: string): void {
	mkdirSync(join(configDir, "node_modules"), { recursive: true });
	writeFileSync(join(configDir, "package-lock.json"), OPENCODE_LOCK + "\n");
}

/** Run `opencode run --print-logs` once in a temp project. Store: <HOME>/.local/share/opencode/opencode.db. */
export async function runOpencode(o: OpencodeRunOptions): Promise<OpencodeRunResult> {
	const l = layout("oc", o, "proj");
	const config: Json = {
		$schema: "https://opencode.ai/config.json",
		model: "mock/mock-model",
		small_model: "mock/mock-model",
		autoupdate: false,
		share: "disabled",
		permission: { bash: "allow", read: "allow", edit: "allow", external_directory: "allow" },
		provider: {
			mock: {
				npm: "@ai-sdk/openai-compatible",
				name: "Mock LLM",
				options: { baseURL: o.mockUrl, apiKey: "mock-key" },
				models: {
					"mock-model": {
						name: "Mock Model",
						tool_call: true,
						cost: { input: MOCK_PRICES.input, output: MOCK_PRICES.output, cache_read: MOCK_PRICES.cacheRead, cache_write: MOCK_PRICES.cacheWrite },
						limit: { context: 128000, output: 8192 },
					},
				},
			},
		},
		...o.config,
	};
	writeFileSync(join(l.cwd, "opencode.json"), JSON.stringify(config, null, 2) + "\n");
	const projDir = join(l.cwd, ".opencode");
	skipPluginInstall(projDir);
	// the global config dir gets the same npm install unless pre-empted
	skipPluginInstall(join(l.home, ".config/opencode"));
	if (o.pluginFile) {
		const dir = join(projDir, "plugin");
		mkdirSync(dir, { recursive: true });
		copyFileSync(o.pluginFile, join(dir, basename(o.pluginFile)));
	}
	const argv = ["opencode", "run", "--print-logs", ...(o.args ?? [])];
	let stdin: string | undefined;
	if (o.promptVia === "stdin") stdin = o.prompt;
	else argv.push(...o.prompt.split(/\s+/).filter(Boolean));
	const env = minimalEnv(l.home, l.tmp, { OPENCODE_DISABLE_MODELS_FETCH: "1", OPENCODE_DISABLE_AUTOUPDATE: "1", ...o.env });
	const p = await runProcess(argv, { cwd: l.cwd, env, logDir: l.logs, timeoutMs: o.timeoutMs, signal: o.signal, onSpawn: o.onSpawn, stdin, killGroupOnExit: o.killGroupOnExit });
	const dataHome = env.XDG_DATA_HOME ?? join(l.home, ".local/share");
	const dbFile = join(dataHome, "opencode/opencode.db");
	let sessions: OpencodeSession[] = [];
	try {
		sessions = readOpencodeSessions(dbFile, l.startedAt - 1000);
	} catch {
		/* store unreadable (e.g. the run was killed mid-write) */
	}
	const tops = sessions.filter(s => !s.parentId);
	return { ...p, root: l.root, home: l.home, cwd: l.cwd, env, cleanup: l.cleanup, sessionId: tops[tops.length - 1]?.id, sessions, dbFile };
}

// ---------------------------------------------------------------- Codex

/** One `token_usage_record` of a rollout (OpenAI semantics: input INCLUDES cached, output INCLUDES reasoning). */
export interface CodexUsage {
	input_tokens: number;
	cached_input_tokens: number;
	cache_write_input_tokens: number;
	output_tokens: number;
	reasoning_output_tokens: number;
	total_tokens: number;
	responseId?: string;
	turnId?: string;
}

export interface CodexRunResult extends RunResult {
	codexHome: string;
	/** $CODEX_HOME/sessions/YYYY/MM/DD/rollout-<ts>-<uuid>.jsonl, oldest first. */
	rolloutFiles: string[];
	/** session_meta.payload.id of the first rollout. */
	threadId?: string;
	/** Every line of every rollout, in file order. */
	rollout: Json[];
	tokenUsages: CodexUsage[];
	/** task_complete.last_agent_message values. */
	lastAgentMessages: string[];
}

export interface CodexRunOptions extends RunOptions {
	/** The `notify` program array (runs once per turn with a JSON argument). */
	notify?: string[];
	/** Extra top-level config.toml keys (strings, numbers, booleans, arrays of those). */
	config?: Record<string, string | number | boolean | (string | number | boolean)[]>;
	/** Raw TOML appended after the generated tables (e.g. an [otel] section). */
	extraToml?: string;
	/** Written to $CODEX_HOME/hooks.json. */
	hooks?: unknown;
	model?: string;
	/** Reuse a CODEX_HOME (e.g. for `codex exec resume`). */
	codexHome?: string;
}

function tomlValue(v: string | number | boolean | (string | number | boolean)[]): string {
	if (Array.isArray(v)) return `[${v.map(x => tomlValue(x)).join(", ")}]`;
	if (typeof v === "string") return JSON.stringify(v); // JSON string escapes are valid TOML basic strings
	return String(v);
}

/** Parse Codex rollout files. */
export function readCodexRollouts(files: string[]): Pick<CodexRunResult, "threadId" | "rollout" | "tokenUsages" | "lastAgentMessages"> {
	const rollout = files.flatMap(f => readJsonl(f));
	const meta = rollout.find(r => r.type === "session_meta");
	const tokenUsages: CodexUsage[] = rollout
		.filter(r => r.type === "token_usage_record" && r.payload?.usage)
		.map(r => {
			const u: Json = r.payload.usage;
			return {
				input_tokens: num(u.input_tokens),
				cached_input_tokens: num(u.cached_input_tokens),
				cache_write_input_tokens: num(u.cache_write_input_tokens),
				output_tokens: num(u.output_tokens),
				reasoning_output_tokens: num(u.reasoning_output_tokens),
				total_tokens: num(u.total_tokens),
				responseId: r.payload.response_id,
				turnId: r.payload.turn_id,
			};
		});
	const lastAgentMessages = rollout
		.filter(r => r.type === "event_msg" && r.payload?.type === "task_complete" && typeof r.payload.last_agent_message === "string")
		.map(r => String(r.payload.last_agent_message));
	return { threadId: meta?.payload?.id, rollout, tokenUsages, lastAgentMessages };
}

/** Run `codex exec --skip-git-repo-check` once with CODEX_HOME=<root>/codex. */
export async function runCodex(o: CodexRunOptions): Promise<CodexRunResult> {
	const l = layout("codex", o);
	const codexHome = o.codexHome ?? join(l.root, "codex");
	mkdirSync(codexHome, { recursive: true });
	const top: Record<string, string | number | boolean | (string | number | boolean)[]> = {
		model: o.model ?? "mock-model",
		model_provider: "mock",
		approval_policy: "never",
		sandbox_mode: "danger-full-access",
		...(o.notify ? { notify: o.notify } : {}),
		...o.config,
	};
	const lines = Object.entries(top).map(([k, v]) => `${k} = ${tomlValue(v)}`);
	lines.push(
		"",
		"[model_providers.mock]",
		'name = "Mock LLM"',
		`base_url = ${tomlValue(o.mockUrl)}`,
		'env_key = "MOCK_API_KEY"',
		'wire_api = "responses"',
		"",
	);
	if (o.extraToml) lines.push(o.extraToml, "");
	writeFileSync(join(codexHome, "config.toml"), lines.join("\n"));
	if (o.hooks !== undefined) writeFileSync(join(codexHome, "hooks.json"), JSON.stringify(o.hooks, null, 2) + "\n");
	const argv = ["codex", "exec", "--skip-git-repo-check", ...(o.args ?? []), o.prompt];
	const env = minimalEnv(l.home, l.tmp, { CODEX_HOME: codexHome, MOCK_API_KEY: "sk-mock-dummy", ...o.env });
	const p = await runProcess(argv, { cwd: l.cwd, env, logDir: l.logs, timeoutMs: o.timeoutMs, signal: o.signal, onSpawn: o.onSpawn, killGroupOnExit: o.killGroupOnExit });
	const rolloutFiles = walk(join(codexHome, "sessions"), f => /rollout-.*\.jsonl$/.test(basename(f)))
		.map(f => ({ f, mtime: statSync(f).mtimeMs }))
		.filter(x => x.mtime >= l.startedAt - 1000)
		.sort((a, b) => a.mtime - b.mtime)
		.map(x => x.f);
	return { ...p, root: l.root, home: l.home, cwd: l.cwd, env, cleanup: l.cleanup, codexHome, rolloutFiles, ...readCodexRollouts(rolloutFiles) };
}

// ---------------------------------------------------------------- Claude Code

/** Hook events Claude Code fires in `-p` mode (all of them reach a hook; see the probe README). */
export const CLAUDE_HOOK_EVENTS = ["SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "PostToolUseFailure", "Stop", "StopFailure", "SubagentStart", "SubagentStop", "SessionEnd"] as const;

export interface ClaudeRunOptions extends Omit<RunOptions, "mockUrl"> {
	/** ANTHROPIC_BASE_URL, i.e. MockAnthropic.url (no /v1). */
	mockUrl: string;
	/** A shell command run for every hook event (Claude Code gives it the JSON payload on stdin). */
	hookCommand?: string;
	/** Which events get hookCommand (default CLAUDE_HOOK_EVENTS). */
	hookEvents?: readonly string[];
	/** Hook timeout in seconds (Claude Code's unit); SessionEnd is otherwise cancelled after ~1.5 s. Default 10. */
	hookTimeoutSec?: number;
	/** `--resume <session id>` (reuse `home` and `cwd` of the earlier run). */
	resume?: string;
	/** With resume: `--fork-session` (new session id, history copied). */
	forkSession?: boolean;
	/** `--allowedTools` (default ["Bash"]; as root, bypass mode needs IS_SANDBOX=1). */
	allowedTools?: string[];
	model?: string;
	/** Written as <cwd>/.claude/settings.json as it is (e.g. what `langfuse.ts claude-config` prints); hookCommand's hooks are added. */
	settings?: Json;
}

export interface ClaudeRunResult extends RunResult {
	/** `$HOME/.claude/projects/<encoded cwd>` */
	projectDir: string;
	/** The session this run wrote to (newest transcript changed by the run). */
	sessionId?: string;
	transcriptFile?: string;
	/** Every `<session>.jsonl` in projectDir changed by this run. */
	transcriptFiles: string[];
	/** `<session>/subagents/agent-*.jsonl` of sessionId. */
	subagentFiles: string[];
}

/** Claude Code's project folder name: the cwd with every non-alphanumeric character turned into "-". */
export function claudeProjectDirName(cwd: string): string {
	return cwd.replace(/[^A-Za-z0-9]/g, "-");
}

/**
 * Run `claude -p <prompt>` once, offline against the mock Anthropic API, with an env -i style environment
 * (only what the probe recipe sets), HOME/cwd/tmp under a temp root, and hooks in <cwd>/.claude/settings.json.
 */
export async function runClaude(o: ClaudeRunOptions): Promise<ClaudeRunResult> {
	const l = layout("claude", o);
	if (o.hookCommand || o.settings) {
		const settings: Json = { ...o.settings, hooks: { ...o.settings?.hooks } };
		for (const ev of o.hookCommand ? (o.hookEvents ?? CLAUDE_HOOK_EVENTS) : [])
			settings.hooks[ev] = [...(settings.hooks[ev] ?? []), { matcher: "*", hooks: [{ type: "command", command: o.hookCommand, timeout: o.hookTimeoutSec ?? 10 }] }];
		mkdirSync(join(l.cwd, ".claude"), { recursive: true });
		writeFileSync(join(l.cwd, ".claude/settings.json"), JSON.stringify(settings, null, 2) + "\n");
	}
	const args = ["-p", o.prompt, "--allowedTools", ...(o.allowedTools ?? ["Bash"])];
	if (o.model) args.push("--model", o.model);
	if (o.resume) args.push("--resume", o.resume);
	if (o.forkSession) args.push("--fork-session");
	args.push(...(o.args ?? []));
	const tmp = join(l.root, "tmp");
	const env = minimalEnv(l.home, tmp, {
		ANTHROPIC_BASE_URL: o.mockUrl,
		ANTHROPIC_API_KEY: "dummy",
		CLAUDE_CODE_TMPDIR: tmp,
		DISABLE_TELEMETRY: "1",
		DISABLE_ERROR_REPORTING: "1",
		DISABLE_AUTOUPDATER: "1",
		CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
		...o.env,
	});
	const startedAt = Date.now();
	// LF_CLAUDE_BIN: another copy of the binary (npm --no-save installs by others can prune node_modules' copy)
	const p = await runProcess([process.env.LF_CLAUDE_BIN || "claude", ...args], { cwd: l.cwd, env, logDir: l.logs, timeoutMs: o.timeoutMs ?? 120_000, signal: o.signal, onSpawn: o.onSpawn, killGroupOnExit: o.killGroupOnExit });
	const projectDir = join(l.home, ".claude/projects", claudeProjectDirName(l.cwd));
	const transcriptFiles = walk(projectDir, f => /^[0-9a-f-]{36}\.jsonl$/.test(basename(f)) && resolve(f, "..") === projectDir)
		.map(f => ({ f, mtime: statSync(f).mtimeMs }))
		.filter(x => x.mtime >= startedAt - 1000)
		.sort((a, b) => a.mtime - b.mtime)
		.map(x => x.f);
	const transcriptFile = transcriptFiles.at(-1);
	const sessionId = transcriptFile ? basename(transcriptFile, ".jsonl") : undefined;
	const subagentFiles = sessionId ? walk(join(projectDir, sessionId, "subagents"), f => /^agent-.*\.jsonl$/.test(basename(f))).sort() : [];
	return { ...p, root: l.root, home: l.home, cwd: l.cwd, env, cleanup: l.cleanup, projectDir, sessionId, transcriptFile, transcriptFiles, subagentFiles };
}
