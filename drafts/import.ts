// drafts/import.ts — readers for `bun langfuse.ts import` (issue 13, phase 1).
//
// Pure parsers from a host's own record to the shared RecordedPrompt model (notes/RECORDED.md):
//   parsePiSessionFile(lines, "omp"|"pi")  an omp / pi session file (JSONL), one file at a time
//   linkPiSubagents(files)                 nests omp subagent session files into their parent's task tool
//   openCodeSessionsFromRows(rows)         OpenCode's session/message/part rows → sessions with prompts
//   readOpenCodeDatabase(file)             the only I/O: opens opencode.db read-only (bun:sqlite or node:sqlite)
//   importSources(env, home) / classifyImportPath(path)   where history lives; what a given path is
// Only node: imports; SQLite is loaded with a dynamic import behind a runtime check, so this file still
// loads under Node 20 (pi's jiti) where neither bun:sqlite nor node:sqlite exists.
//
// What the records give (measured on omp 18.2.3, pi 0.73.1, opencode 1.18.33, see test/fixtures/import/):
// - omp / pi: one JSONL file per session. Header `{type:"session", id, cwd, parentSession?}` (omp writes a
//   padded `{type:"title"}` line FIRST and rewrites it in place later: same size, new mtime). Then entries
//   `{type, id (8 hex), parentId, timestamp (ISO)}`: `message` (user / assistant / toolResult), `compaction`
//   {summary, tokensBefore, tokensAfter, firstKeptEntryId}, `model_change`, `custom` (omp:
//   tool_execution_start {toolCallId, startedAt}, session_exit), omp subagents: `session_init`
//   {systemPrompt, task, tools}. Assistant messages carry usage {input (excl. cache), output, cacheRead,
//   cacheWrite, totalTokens, cost{input, output, cacheRead, cacheWrite, total}}, `timestamp` (request
//   start, ms), omp adds `completedAt`, `duration`, `ttft`. Entries form a tree (parentId): a file can hold
//   abandoned branches, so a call's input is its ancestor chain, not "everything above it".
// - omp subagents (task tool): `<parent file without .jsonl>/<TaskId>.jsonl`, header parentSession = the
//   parent's absolute path, and the parent's task toolResult lists `details.results[].id` = TaskId.
//   Paths are absolute and moved records keep their layout, so linking matches names, not full paths.
//   The task result's `details.usage` repeats the child's usage: it is NOT counted again.
// - OpenCode: tables session (cumulative cost/tokens, parent_id, title), message (data JSON: role,
//   parentID = the user message of an assistant message, tokens, cost, finish, time), part (text, tool
//   {callID, state{status, input, output, metadata{exit, sessionId}, time}}, step-start/finish, reasoning).
//   A failing bash call is status "completed" with metadata.exit ≠ 0 (the live plugin calls it an ERROR too).
//
// Remembering what was imported (design; the state file is phase 2, next to the spool):
//   key = absolute path (+ session id for OpenCode). For an omp/pi file keep
//   {size, mtimeMs, sessionId, lastPromptId, lastPromptEndMs, complete}. Next run: same size and mtime →
//   skip without reading. Otherwise parse the WHOLE file again (a call's input is its ancestor chain, so a
//   tail-only read cannot rebuild it; files are MBs at most) and send only prompts after lastPromptId,
//   plus lastPromptId itself when it was not complete (the file was still being written: no later user
//   message and no session_exit after it). Re-sending is safe because every id is derived from host ids
//   (see "Ids" below): the same trace is updated, not duplicated. A byte offset alone is NOT enough: omp
//   rewrites its first line in place, and a resumed session appends to an old file.
//   For OpenCode keep per session {timeUpdated, lastMessageId}: `select … from session where
//   time_updated > ?` finds changed sessions; message ids (msg_…) sort by time, so prompts whose user
//   message id ≤ lastMessageId and that were complete are skipped. Codex rollouts: {size, lastTurnId}.
//
// Ids: everything here carries the HOST's ids (session uuid / ses_…, user-message entry id / msg_…,
// assistant entry id / msg_…, tool-call id) and the host's own timestamps. For omp/pi, key trace and span
// ids on what the LIVE extension can also see: a user message's `timestamp` (= prompt.startMs here; the
// entry id is written only AFTER the extension's message_end), an assistant message's `timestamp`
// (= llm.startMs), the toolCallId (= tool.id). For OpenCode the message ids and callIDs are seen live too.
// Proposed: trace = hashId(`${host}:${sessionId}:prompt:${key}`, 32), spans = hashId(`…:${kind}:${key}`, 16).

// ---------------------------------------------------------------- the shared model (notes/RECORDED.md)

/** OpenAI-style ChatML: what Langfuse's chat view renders. */
export interface ChatMessage {
	role: "system" | "user" | "assistant" | "tool";
	content: string | unknown[];
	tool_calls?: { id: string; type: "function"; function: { name: string; arguments: string } }[];
	tool_call_id?: string;
	reasoning?: string;
}
export interface ToolDefinition {
	type: "function";
	function: { name: string; description?: string; parameters?: unknown };
}
/** Non-overlapping: input EXCLUDES cache read/write, output EXCLUDES reasoning. */
export interface TokenCounts {
	input?: number;
	output?: number;
	cacheRead?: number;
	cacheWrite?: number;
	cacheWrite5m?: number;
	cacheWrite1h?: number;
	reasoning?: number;
	total?: number;
}
export interface RecordedPrompt {
	id: string;
	sessionId: string;
	startMs: number;
	endMs: number;
	text: string;
	answer?: string;
	aborted?: boolean;
	error?: string;
	steps: RecordedStep[];
	metadata?: Record<string, unknown>;
}
export interface LlmStep {
	kind: "llm";
	id: string;
	startMs: number;
	endMs: number;
	completionStartMs?: number;
	model?: string;
	provider?: string;
	parameters?: Record<string, string | number | boolean>;
	input: ChatMessage[];
	tools?: ToolDefinition[];
	output: ChatMessage;
	usage?: TokenCounts;
	/** Only what the host recorded per call, never zeros. cacheRead/cacheWrite: omp/pi record them (an addition to RECORDED.md). */
	costUsd?: { input?: number; output?: number; cacheRead?: number; cacheWrite?: number; total: number };
	stopReason?: string;
	error?: string;
}
export interface ToolStep {
	kind: "tool";
	id: string;
	name: string;
	startMs: number;
	endMs: number;
	input: unknown;
	output: unknown;
	isError: boolean;
	subagent?: { sessionId?: string; prompts: RecordedPrompt[] };
}
export interface CompactionStep {
	kind: "compaction";
	id: string;
	startMs: number;
	endMs: number;
	summary?: string;
	tokensBefore?: number;
}
export interface EventStep {
	kind: "event";
	id: string;
	at: number;
	name: string;
	level?: "WARNING" | "ERROR";
	message?: string;
}
export type RecordedStep = LlmStep | ToolStep | CompactionStep | EventStep;

// ---------------------------------------------------------------- small helpers

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** ISO string or epoch ms → epoch ms. */
function toMs(v: unknown): number | undefined {
	if (typeof v === "number" && Number.isFinite(v)) return v;
	if (typeof v === "string") {
		const t = Date.parse(v);
		return Number.isNaN(t) ? undefined : t;
	}
	return undefined;
}

function parseJsonLine(line: string): Json | undefined {
	if (!line.trim()) return undefined;
	try {
		const v: unknown = JSON.parse(line);
		return isObject(v) ? v : undefined;
	} catch {
		// a half-written last line while the host is still running: read the rest next time
		return undefined;
	}
}

/** The text parts of a content value joined; other parts (images) are left out of the text. */
function textOf(content: unknown): string {
	if (typeof content === "string") return content;
	return arr(content)
		.map(p => (isObject(p) && p.type === "text" && typeof p.text === "string" ? p.text : ""))
		.filter(Boolean)
		.join("\n");
}

/** Drop undefined keys so tests and encoders see only what the record had. */
function compact<T extends object>(o: T): T {
	for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
	return o;
}

/** Usage object with only the counts the host recorded (zeros kept: a recorded 0 is a fact). */
function tokenCounts(parts: TokenCounts): TokenCounts | undefined {
	const out = compact({ ...parts });
	return Object.keys(out).length ? out : undefined;
}

// ---------------------------------------------------------------- omp / pi session files

export interface PiSessionParse {
	sessionId: string;
	host: "omp" | "pi";
	cwd?: string;
	/** omp subagents: the parent's session file as the child recorded it (an absolute path). */
	parentSession?: string;
	/** Set by linkPiSubagents on a child it could not nest (no matching task tool) but whose parent it found. */
	parentSessionId?: string;
	/** omp: the session title from the leading `title` line, when set. */
	title?: string;
	prompts: RecordedPrompt[];
	/** omp task tools that started subagents: tool-call id → task ids (= child file names without .jsonl). */
	subagentTasks: { toolCallId: string; taskIds: string[] }[];
	/** Id of the last entry read: what a second import compares against. */
	lastEntryId?: string;
	/** True when a session_exit follows the last prompt (omp), i.e. the host finished writing it. */
	complete: boolean;
}

interface Entry {
	type: string;
	id?: string;
	parentId?: string | null;
	at?: number;
	raw: Json;
}

/** A user / assistant / toolResult message as ChatML, for the input history of later calls. */
function piChat(message: Json): ChatMessage | undefined {
	const role = message.role;
	if (role === "user") return { role: "user", content: textOf(message.content) };
	if (role === "toolResult") return compact({ role: "tool" as const, content: textOf(message.content), tool_call_id: str(message.toolCallId) });
	if (role === "assistant") return piAssistantOutput(message);
	return undefined;
}

function piAssistantOutput(message: Json): ChatMessage {
	const parts = arr(message.content).filter(isObject);
	const text = parts
		.filter(p => p.type === "text")
		.map(p => str(p.text) ?? "")
		.join("");
	const reasoning = parts
		.filter(p => p.type === "thinking")
		.map(p => str(p.thinking) ?? "")
		.join("");
	const calls = parts
		.filter(p => p.type === "toolCall")
		.map(p => ({ id: String(p.id), type: "function" as const, function: { name: String(p.name), arguments: JSON.stringify(p.arguments ?? {}) } }));
	return compact({ role: "assistant" as const, content: text, tool_calls: calls.length ? calls : undefined, reasoning: reasoning || undefined });
}

function piUsage(usage: unknown): TokenCounts | undefined {
	if (!isObject(usage)) return undefined;
	// omp/pi already report input without cached tokens; reasoning is not split out of output by them
	return tokenCounts({ input: num(usage.input), output: num(usage.output), cacheRead: num(usage.cacheRead), cacheWrite: num(usage.cacheWrite), total: num(usage.totalTokens) });
}

function piCost(usage: unknown): LlmStep["costUsd"] {
	const c = isObject(usage) && isObject(usage.cost) ? usage.cost : undefined;
	const total = num(c?.total);
	// the contract: only costs the host recorded, never zeros (an unpriced model records 0)
	if (!c || total === undefined || total <= 0) return undefined;
	return compact({ input: num(c.input), output: num(c.output), cacheRead: num(c.cacheRead), cacheWrite: num(c.cacheWrite), total });
}

/** The messages a call received: its ancestors (the tree may hold other branches), cut at a compaction. */
function ancestorHistory(entry: Entry, byId: Map<string, Entry>, chat: Map<string, ChatMessage>, system?: string): ChatMessage[] {
	const chain: Entry[] = [];
	const seen = new Set<string>();
	for (let cur = entry.parentId ? byId.get(entry.parentId) : undefined; cur?.id && !seen.has(cur.id); cur = cur.parentId ? byId.get(cur.parentId) : undefined) {
		seen.add(cur.id);
		chain.push(cur);
	}
	chain.reverse();
	const messages = (list: Entry[]) => list.map(e => (e.id ? chat.get(e.id) : undefined)).filter((m): m is ChatMessage => !!m);
	const out: ChatMessage[] = system ? [{ role: "system", content: system }] : [];
	const ci = chain.map(e => e.type).lastIndexOf("compaction");
	if (ci < 0) return [...out, ...messages(chain)];
	// after a compaction the model sees its summary, the entries it kept (from firstKeptEntryId), then what followed
	const c = chain[ci];
	const kept = chain.findIndex(e => e.id === c.raw.firstKeptEntryId);
	out.push({ role: "user", content: `[compaction summary]\n${str(c.raw.summary) ?? ""}` });
	return [...out, ...messages(kept >= 0 && kept < ci ? chain.slice(kept, ci) : []), ...messages(chain.slice(ci + 1))];
}

/**
 * Parse one omp or pi session file (its lines, in order). Pure: no paths are opened.
 * A prompt starts at each user message (omp subagents: the `attribution:"agent"` task message too) and
 * holds every call, tool, and compaction until the next one.
 */
export function parsePiSessionFile(lines: string[], host: "omp" | "pi"): PiSessionParse {
	const entries: Entry[] = [];
	const result: PiSessionParse = { sessionId: "", host, prompts: [], subagentTasks: [], complete: false };
	let system: string | undefined;
	let toolDefs: ToolDefinition[] | undefined;
	for (const line of lines) {
		const raw = parseJsonLine(line);
		if (!raw || typeof raw.type !== "string") continue;
		if (raw.type === "session") {
			result.sessionId = str(raw.id) ?? "";
			result.cwd = str(raw.cwd);
			result.parentSession = str(raw.parentSession);
			continue;
		}
		if (raw.type === "title") {
			if (str(raw.title)) result.title = str(raw.title);
			continue;
		}
		if (raw.type === "session_init") {
			system = str(raw.systemPrompt);
			// only names are recorded: enough for Langfuse's tool list, no schemas invented
			const names = arr(raw.tools).filter((t): t is string => typeof t === "string");
			if (names.length) toolDefs = names.map(name => ({ type: "function", function: { name } }));
		}
		entries.push({ type: raw.type, id: str(raw.id), parentId: (str(raw.parentId) ?? null) as string | null, at: toMs(raw.timestamp), raw });
	}
	const byId = new Map<string, Entry>();
	const chat = new Map<string, ChatMessage>();
	for (const e of entries) if (e.id) byId.set(e.id, e);

	let prompt: RecordedPrompt | undefined;
	/** tool-call id → its step, to close it when the result arrives */
	const openTools = new Map<string, ToolStep>();
	/** omp records when a tool really started */
	const toolStarts = new Map<string, number>();
	let lastAt = 0;
	const finishPrompt = () => {
		if (!prompt) return;
		for (const t of openTools.values()) t.endMs = Math.max(t.startMs, prompt.endMs);
		openTools.clear();
		prompt.steps.sort((a, b) => startOf(a) - startOf(b));
		result.prompts.push(prompt);
		prompt = undefined;
	};
	for (const e of entries) {
		const at = e.at ?? lastAt;
		if (e.id) result.lastEntryId = e.id;
		if (e.type === "custom" && e.raw.customType === "tool_execution_start" && isObject(e.raw.data)) {
			const id = str(e.raw.data.toolCallId);
			const started = toMs(e.raw.data.startedAt) ?? at;
			if (id) toolStarts.set(id, started);
			const open = id ? openTools.get(id) : undefined;
			if (open) open.startMs = started;
		} else if (e.type === "custom" && e.raw.customType === "session_exit") {
			if (prompt) prompt.endMs = Math.max(prompt.endMs, at);
			result.complete = true;
		} else if (e.type === "compaction") {
			const step: CompactionStep = compact({
				kind: "compaction" as const,
				id: e.id ?? `compaction@${at}`,
				// the record has only the end; it started when the entry before it was written
				startMs: lastAt || at,
				endMs: at,
				summary: str(e.raw.summary),
				tokensBefore: num(e.raw.tokensBefore),
			});
			if (!prompt) {
				// a manual compaction before any prompt: its own trace, as the live extension does
				result.prompts.push({ id: step.id, sessionId: result.sessionId, startMs: step.startMs, endMs: step.endMs, text: "compaction", steps: [step] });
			} else {
				prompt.steps.push(step);
				prompt.endMs = Math.max(prompt.endMs, at);
			}
		} else if (e.type === "message" && isObject(e.raw.message)) {
			const m = e.raw.message;
			const msgAt = toMs(m.timestamp) ?? at;
			const asChat = piChat(m);
			if (m.role === "user") {
				finishPrompt();
				result.complete = false;
				prompt = { id: e.id ?? `user@${msgAt}`, sessionId: result.sessionId, startMs: msgAt, endMs: at, text: textOf(m.content), steps: [] };
			} else if (m.role === "assistant" && prompt) {
				const step = piLlmStep(e, m, ancestorHistory(e, byId, chat, system), toolDefs);
				prompt.steps.push(step);
				const text = typeof step.output.content === "string" ? step.output.content : "";
				if (text) prompt.answer = text;
				if (m.stopReason === "aborted") prompt.aborted = true;
				if (step.error) prompt.error = step.error;
				else if (m.stopReason === "stop") prompt.error = undefined;
				for (const call of step.output.tool_calls ?? []) {
					const tool: ToolStep = {
						kind: "tool",
						id: call.id,
						name: call.function.name,
						// pi records no tool start: the call exists once the message is complete
						startMs: toolStarts.get(call.id) ?? step.endMs,
						endMs: step.endMs,
						input: piToolArgs(m, call.id),
						output: undefined,
						isError: false,
					};
					openTools.set(call.id, tool);
					prompt.steps.push(tool);
				}
				prompt.endMs = Math.max(prompt.endMs, step.endMs, at);
			} else if (m.role === "toolResult" && prompt) {
				const id = str(m.toolCallId) ?? "";
				const tool = openTools.get(id);
				if (tool) {
					openTools.delete(id);
					tool.endMs = Math.max(tool.startMs, msgAt);
					tool.output = toolOutput(m.content);
					tool.isError = m.isError === true;
					const taskIds = piSubagentTaskIds(m, tool.input);
					if (taskIds.length) result.subagentTasks.push({ toolCallId: id, taskIds });
				}
				prompt.endMs = Math.max(prompt.endMs, msgAt, at);
			}
			if (asChat && e.id) chat.set(e.id, asChat);
		}
		if (e.at !== undefined) lastAt = e.at;
	}
	finishPrompt();
	if (!result.complete && result.prompts.length) {
		// pi writes no session_exit: a prompt whose last call stopped (not toolUse) is finished
		const last = result.prompts[result.prompts.length - 1].steps.filter((s): s is LlmStep => s.kind === "llm").pop();
		if (host === "pi" && last && last.stopReason !== "toolUse") result.complete = true;
	}
	return compact(result);
}

function startOf(s: RecordedStep): number {
	return s.kind === "event" ? s.at : s.startMs;
}

function piLlmStep(e: Entry, m: Json, input: ChatMessage[], tools: ToolDefinition[] | undefined): LlmStep {
	const written = e.at ?? 0;
	const start = toMs(m.timestamp) ?? written;
	// omp: completedAt; else start + duration; pi: the entry is written when the message ends
	const end = num(m.completedAt) ?? (num(m.duration) !== undefined ? start + (num(m.duration) as number) : written);
	const ttft = num(m.ttft);
	const model = str(m.model);
	return compact({
		kind: "llm" as const,
		id: e.id ?? str(m.responseId) ?? `assistant@${start}`,
		startMs: start,
		endMs: Math.max(start, end),
		completionStartMs: ttft !== undefined ? Math.round(start + ttft) : undefined,
		model,
		provider: str(m.provider),
		input,
		tools,
		output: piAssistantOutput(m),
		usage: piUsage(m.usage),
		costUsd: piCost(m.usage),
		stopReason: str(m.stopReason),
		error: str(m.errorMessage) ?? (m.stopReason === "error" ? "error" : undefined),
	});
}

function piToolArgs(m: Json, callId: string): unknown {
	const part = arr(m.content).find(p => isObject(p) && p.type === "toolCall" && p.id === callId);
	return isObject(part) ? part.arguments : undefined;
}

/** Tool output: the text when it is only text, else the parts as recorded. */
function toolOutput(content: unknown): unknown {
	const parts = arr(content);
	if (parts.every(p => isObject(p) && p.type === "text")) return textOf(content);
	return parts;
}

/**
 * omp's task tool result names the subagents it ran: details.results[].id = the child file's name.
 * Without results (async tasks answer "Spawned agent …" at once) the call's own tasks[].name are the ids.
 */
function piSubagentTaskIds(m: Json, args: unknown): string[] {
	if (m.toolName !== "task") return [];
	const fromResults = arr(isObject(m.details) ? m.details.results : undefined)
		.map(r => (isObject(r) ? str(r.id) : undefined))
		.filter((id): id is string => !!id);
	if (fromResults.length) return fromResults;
	return arr(isObject(args) ? args.tasks : undefined)
		.map(t => (isObject(t) ? str(t.name) : undefined))
		.filter((id): id is string => !!id);
}

export interface PiSessionFile {
	/** Where the file was found (any layout: only the last two path segments are compared). */
	path: string;
	parsed: PiSessionParse;
}

/**
 * Nest omp subagent sessions into the task tool that ran them and return the top-level sessions.
 * A child lives at `<parent file minus .jsonl>/<TaskId>.jsonl`; matching by those names (not the
 * absolute paths the records hold) keeps moved or copied histories linkable. Unmatched children stay
 * top-level (their parent was not imported): nothing is dropped.
 */
export function linkPiSubagents(files: PiSessionFile[]): PiSessionFile[] {
	const strip = (p: string) => p.replace(/\\/g, "/").replace(/\.jsonl$/, "");
	const byStem = new Map<string, PiSessionFile>();
	for (const f of files) byStem.set(strip(f.path), f);
	const linked = new Set<PiSessionFile>();
	for (const parent of files) {
		for (const task of parent.parsed.subagentTasks) {
			const tool = findTool(parent.parsed.prompts, task.toolCallId);
			if (!tool) continue;
			for (const taskId of task.taskIds) {
				const child = byStem.get(`${strip(parent.path)}/${taskId}`);
				if (!child || !child.parsed.parentSession) continue;
				// the child's header must name this parent file (by file name: the record may have moved)
				const named = strip(child.parsed.parentSession).split("/").pop();
				if (named !== strip(parent.path).split("/").pop()) continue;
				tool.subagent = { sessionId: child.parsed.sessionId, prompts: child.parsed.prompts };
				linked.add(child);
			}
		}
	}
	// a child whose parent is here but whose task tool is not: keep it top-level, linked by session id
	for (const f of files) {
		if (linked.has(f) || !f.parsed.parentSession) continue;
		const parentStem = f.path.replace(/\\/g, "/").split("/").slice(0, -1).join("/");
		const parent = byStem.get(parentStem);
		if (parent) f.parsed.parentSessionId = parent.parsed.sessionId;
	}
	return files.filter(f => !linked.has(f));
}

function findTool(prompts: RecordedPrompt[], id: string): ToolStep | undefined {
	for (const p of prompts) for (const s of p.steps) if (s.kind === "tool" && s.id === id) return s;
	return undefined;
}

// ---------------------------------------------------------------- OpenCode

/** The rows readOpenCodeDatabase selects (the columns langfuse needs; data is the JSON text). */
export interface OpenCodeRows {
	sessions: {
		id: string;
		parent_id: string | null;
		title: string;
		directory: string;
		cost: number;
		tokens_input: number;
		tokens_output: number;
		tokens_reasoning: number;
		tokens_cache_read: number;
		tokens_cache_write: number;
		time_created: number;
		time_updated: number;
	}[];
	messages: { id: string; session_id: string; time_created: number; data: string }[];
	parts: { id: string; message_id: string; session_id: string; time_created: number; data: string }[];
}

export interface OpenCodeSession {
	sessionId: string;
	parentId?: string;
	title: string;
	directory: string;
	timeCreated: number;
	timeUpdated: number;
	/** OpenCode's own cumulative totals (session row): what the imported generations must add up to. */
	totals: { cost: number; tokens: { input: number; output: number; reasoning: number; cacheRead: number; cacheWrite: number } };
	/** Id of the newest message: what a second import compares against. */
	lastMessageId?: string;
	/** The last prompt is over: its last assistant message completed with a final finish (not "tool-calls"). */
	complete: boolean;
	prompts: RecordedPrompt[];
}

function parseData(text: string): Json {
	return parseJsonLine(text) ?? {};
}

/** Prompts of one OpenCode session from its message and part rows (sorted by time_created, id). */
function openCodePrompts(sessionId: string, messages: OpenCodeRows["messages"], partsOf: Map<string, Json[]>): RecordedPrompt[] {
	const prompts: RecordedPrompt[] = [];
	const byUser = new Map<string, RecordedPrompt>();
	const history: ChatMessage[] = [];
	for (const row of messages) {
		const data = parseData(row.data);
		const parts = partsOf.get(row.id) ?? [];
		const time = isObject(data.time) ? data.time : {};
		if (data.role === "user") {
			// synthetic parts are context OpenCode adds (file contents, reminders), not what was typed
			const text = parts
				.filter(p => p.type === "text" && p.synthetic !== true)
				.map(p => str(p.text) ?? "")
				.join("\n");
			const at = num(time.created) ?? row.time_created;
			const prompt: RecordedPrompt = { id: row.id, sessionId, startMs: at, endMs: at, text, steps: [] };
			const compaction = parts.find(p => p.type === "compaction");
			if (compaction) prompt.metadata = { compaction: true, auto: compaction.auto === true };
			prompts.push(prompt);
			byUser.set(row.id, prompt);
			history.push({ role: "user", content: text });
			continue;
		}
		if (data.role !== "assistant") continue;
		const prompt = byUser.get(str(data.parentID) ?? "") ?? prompts[prompts.length - 1];
		if (!prompt) continue;
		const step = openCodeLlmStep(row, data, parts, history.slice());
		const tools = openCodeToolSteps(parts);
		prompt.steps.push(step, ...tools);
		prompt.endMs = Math.max(prompt.endMs, step.endMs, ...tools.map(t => t.endMs));
		const text = typeof step.output.content === "string" ? step.output.content : "";
		if (text) prompt.answer = text;
		if (step.error) prompt.error = step.error;
		if (isObject(data.error) && data.error.name === "MessageAbortedError") prompt.aborted = true;
		if (data.summary === true) prompt.metadata = { ...prompt.metadata, compactionSummary: true };
		history.push(step.output);
		for (const t of tools) history.push({ role: "tool", content: typeof t.output === "string" ? t.output : JSON.stringify(t.output ?? null), tool_call_id: t.id });
	}
	for (const p of prompts) p.steps.sort((a, b) => startOf(a) - startOf(b));
	return prompts;
}

function openCodeLlmStep(row: OpenCodeRows["messages"][number], data: Json, parts: Json[], input: ChatMessage[]): LlmStep {
	const time = isObject(data.time) ? data.time : {};
	const start = num(time.created) ?? row.time_created;
	const end = num(time.completed) ?? Math.max(start, ...parts.map(p => (isObject(p.time) ? (num(p.time.end) ?? 0) : 0)));
	const text = parts
		.filter(p => p.type === "text" && p.synthetic !== true)
		.map(p => str(p.text) ?? "")
		.join("");
	const reasoning = parts
		.filter(p => p.type === "reasoning")
		.map(p => str(p.text) ?? "")
		.join("");
	const calls = parts
		.filter(p => p.type === "tool")
		.map(p => ({
			id: str(p.callID) ?? String(p.id),
			type: "function" as const,
			function: { name: str(p.tool) ?? "tool", arguments: JSON.stringify(isObject(p.state) ? (p.state.input ?? {}) : {}) },
		}));
	// the first streamed text/reasoning is the host's own record of the first token
	const firstOut = parts
		.filter(p => (p.type === "text" || p.type === "reasoning") && isObject(p.time))
		.map(p => num((p.time as Json).start))
		.filter((t): t is number => t !== undefined);
	const tokens = isObject(data.tokens) ? data.tokens : undefined;
	const cache = tokens && isObject(tokens.cache) ? tokens.cache : {};
	const cost = num(data.cost);
	const error = isObject(data.error) ? (str(isObject(data.error.data) ? data.error.data.message : undefined) ?? str(data.error.name)) : undefined;
	return compact({
		kind: "llm" as const,
		id: row.id,
		startMs: start,
		endMs: Math.max(start, end),
		completionStartMs: firstOut.length ? Math.min(...firstOut) : undefined,
		model: str(data.modelID),
		provider: str(data.providerID),
		input,
		output: compact({ role: "assistant" as const, content: text, tool_calls: calls.length ? calls : undefined, reasoning: reasoning || undefined }),
		// OpenCode: input excludes cache, output excludes reasoning (HOSTS.md) — the model's own rule
		usage: tokens
			? tokenCounts({ input: num(tokens.input), output: num(tokens.output), reasoning: num(tokens.reasoning), cacheRead: num(cache.read), cacheWrite: num(cache.write), total: num(tokens.total) })
			: undefined,
		costUsd: cost !== undefined && cost > 0 ? { total: cost } : undefined,
		stopReason: str(data.finish),
		error,
	});
}

function openCodeToolSteps(parts: Json[]): ToolStep[] {
	const out: ToolStep[] = [];
	for (const p of parts) {
		if (p.type !== "tool" || !isObject(p.state)) continue;
		const s = p.state;
		const time = isObject(s.time) ? s.time : {};
		const meta = isObject(s.metadata) ? s.metadata : {};
		const exit = num(meta.exit);
		const start = num(time.start) ?? num(p.time_created) ?? 0;
		const step: ToolStep = {
			kind: "tool",
			id: str(p.callID) ?? String(p.id),
			name: str(p.tool) ?? "tool",
			startMs: start,
			endMs: Math.max(start, num(time.end) ?? start),
			input: s.input,
			output: s.status === "error" ? s.error : s.output,
			// bash reports a failing command as completed with its exit code; the live plugin calls it an error
			isError: s.status === "error" || (exit !== undefined && exit !== 0),
		};
		const child = str(meta.sessionId);
		if (child) step.subagent = { sessionId: child, prompts: [] };
		out.push(step);
	}
	return out;
}

/**
 * Sessions with prompts from OpenCode's rows. Pure. Subagent sessions (parent_id set) are nested into
 * the task tool whose metadata names them and are not returned at the top level; a child whose parent
 * or tool is missing stays top-level so nothing is lost.
 */
export function openCodeSessionsFromRows(rows: OpenCodeRows): OpenCodeSession[] {
	const partsOf = new Map<string, Json[]>();
	for (const p of rows.parts) {
		const data = parseData(p.data);
		data.id ??= p.id;
		data.time_created = p.time_created;
		const list = partsOf.get(p.message_id) ?? [];
		list.push(data);
		partsOf.set(p.message_id, list);
	}
	const messagesOf = new Map<string, OpenCodeRows["messages"]>();
	for (const m of rows.messages) {
		const list = messagesOf.get(m.session_id) ?? [];
		list.push(m);
		messagesOf.set(m.session_id, list);
	}
	const sessions = rows.sessions.map(r => {
		const msgs = (messagesOf.get(r.id) ?? []).sort((a, b) => a.time_created - b.time_created || (a.id < b.id ? -1 : 1));
		const s: OpenCodeSession = {
			sessionId: r.id,
			title: r.title,
			directory: r.directory,
			timeCreated: r.time_created,
			timeUpdated: r.time_updated,
			totals: {
				cost: r.cost,
				tokens: { input: r.tokens_input, output: r.tokens_output, reasoning: r.tokens_reasoning, cacheRead: r.tokens_cache_read, cacheWrite: r.tokens_cache_write },
			},
			lastMessageId: msgs.length ? msgs[msgs.length - 1].id : undefined,
			complete: openCodeComplete(msgs[msgs.length - 1]),
			prompts: openCodePrompts(r.id, msgs, partsOf),
		};
		if (r.parent_id) s.parentId = r.parent_id;
		return compact(s);
	});
	const byId = new Map(sessions.map(s => [s.sessionId, s]));
	const nested = new Set<string>();
	for (const s of sessions) {
		for (const p of s.prompts)
			for (const step of p.steps) {
				if (step.kind !== "tool" || !step.subagent?.sessionId) continue;
				const child = byId.get(step.subagent.sessionId);
				if (!child || child.parentId !== s.sessionId) continue;
				step.subagent.prompts = child.prompts;
				nested.add(child.sessionId);
			}
	}
	return sessions.filter(s => !nested.has(s.sessionId));
}

/** A session is done when its newest message is an assistant message that finished for good. */
function openCodeComplete(last: OpenCodeRows["messages"][number] | undefined): boolean {
	if (!last) return true;
	const data = parseData(last.data);
	const time = isObject(data.time) ? data.time : {};
	return data.role === "assistant" && num(time.completed) !== undefined && data.finish !== "tool-calls";
}

/** Minimal surface shared by bun:sqlite and node:sqlite: prepare(sql).all(...params). */
interface SqliteDb {
	prepare(sql: string): { all(...params: (string | number)[]): unknown[] };
	close(): void;
}

type SqliteOpen = (file: string) => SqliteDb;

/** The runtime's SQLite: bun:sqlite under Bun, node:sqlite on Node ≥ 22.5; else the reason there is none. */
async function loadSqlite(): Promise<{ open?: SqliteOpen; reason?: string }> {
	try {
		if ((globalThis as { Bun?: unknown }).Bun) {
			// a variable specifier keeps Node's and bundlers' static analysis away from bun: modules
			const spec = "bun:sqlite";
			const mod = (await import(spec)) as { Database: new (f: string, o: { readonly: boolean }) => SqliteDb };
			return { open: f => new mod.Database(f, { readonly: true }) };
		}
		const spec = "node:sqlite";
		// readOnly exists since Node 22.12; older 22.x ignore it and open read-write (we only select)
		const mod = (await import(spec)) as { DatabaseSync: new (f: string, o: { readOnly: boolean }) => SqliteDb };
		return { open: f => new mod.DatabaseSync(f, { readOnly: true }) };
	} catch (e) {
		const version = typeof process !== "undefined" ? process.versions?.node : undefined;
		return { reason: `no SQLite in this runtime (Bun, or Node ≥ 22.5 with node:sqlite, is needed; this is Node ${version ?? "?"}): ${(e as Error).message}` };
	}
}

/** Open SQLite read-only with what the runtime has; undefined (with the reason) when it cannot. */
async function openSqlite(file: string): Promise<{ db?: SqliteDb; reason?: string }> {
	const { open, reason } = await loadSqlite();
	if (!open) return { reason };
	try {
		return { db: open(file) };
	} catch (e) {
		return { reason: `cannot open ${file}: ${(e as Error).message}` };
	}
}

export type OpenCodeRead = { ok: true; sessions: OpenCodeSession[] } | { ok: false; reason: string };

/**
 * Read OpenCode's database (read-only; OpenCode may be running: WAL readers do not block it).
 * `sinceMs` keeps only sessions updated at or after it (a second import, `--since`).
 * On Node without node:sqlite it answers `{ok:false, reason}` instead of throwing.
 */
export async function readOpenCodeDatabase(file: string, sinceMs = 0): Promise<OpenCodeRead> {
	const { db, reason } = await openSqlite(file);
	if (!db) return { ok: false, reason: reason ?? "SQLite unavailable" };
	try {
		const columns = "id, parent_id, title, directory, cost, tokens_input, tokens_output, tokens_reasoning, tokens_cache_read, tokens_cache_write, time_created, time_updated";
		const sessions = db.prepare(`select ${columns} from session where time_updated >= ? order by time_created, id`).all(sinceMs) as OpenCodeRows["sessions"];
		// a subagent that finished before sinceMs while its parent changed since: still needed for the nesting
		const have = new Set(sessions.map(s => s.id));
		const childQ = db.prepare(`select ${columns} from session where parent_id = ? order by time_created, id`);
		for (const s of [...sessions]) for (const c of childQ.all(s.id) as OpenCodeRows["sessions"]) if (!have.has(c.id)) (have.add(c.id), sessions.push(c));
		const messages: OpenCodeRows["messages"] = [];
		const parts: OpenCodeRows["parts"] = [];
		// per session, so a big database is read session by session via the (session_id, …) indexes
		const msgQ = db.prepare("select id, session_id, time_created, data from message where session_id = ? order by time_created, id");
		const partQ = db.prepare("select id, message_id, session_id, time_created, data from part where session_id = ? order by message_id, id");
		for (const s of sessions) {
			messages.push(...(msgQ.all(s.id) as OpenCodeRows["messages"]));
			parts.push(...(partQ.all(s.id) as OpenCodeRows["parts"]));
		}
		return { ok: true, sessions: openCodeSessionsFromRows({ sessions, messages, parts }) };
	} catch (e) {
		return { ok: false, reason: `cannot read ${file}: ${(e as Error).message}` };
	} finally {
		db.close();
	}
}

// ---------------------------------------------------------------- what a second import sends

/** Remembered per imported file (omp/pi) or per OpenCode session; see the header for the design. */
export interface ImportMark {
	/** omp/pi: the file's size and mtime; OpenCode: 0 and the session's time_updated. */
	size: number;
	mtimeMs: number;
	sessionId: string;
	lastPromptId?: string;
	/** false: the last prompt may still grow (send it again next time; same ids, same trace). */
	lastPromptComplete: boolean;
}

/** Nothing changed since the mark: skip the file without reading it. */
export function unchangedSince(mark: ImportMark | undefined, size: number, mtimeMs: number): boolean {
	return !!mark && mark.size === size && mark.mtimeMs === mtimeMs;
}

/**
 * The prompts a run must send given the last mark: all of them the first time (or when the file now
 * holds another session, or lost the marked prompt: rewritten), else those after the marked prompt,
 * plus the marked one itself when it was still open.
 */
export function promptsToSend(prompts: RecordedPrompt[], sessionId: string, mark: ImportMark | undefined): RecordedPrompt[] {
	if (!mark || mark.sessionId !== sessionId || !mark.lastPromptId) return prompts;
	const i = prompts.findIndex(p => p.id === mark.lastPromptId);
	if (i < 0) return prompts;
	return prompts.slice(mark.lastPromptComplete ? i + 1 : i);
}

/** The mark to store after sending a parsed file (or OpenCode session). */
export function markAfter(prompts: RecordedPrompt[], sessionId: string, complete: boolean, size: number, mtimeMs: number): ImportMark {
	const last = prompts[prompts.length - 1];
	return compact({ size, mtimeMs, sessionId, lastPromptId: last?.id, lastPromptComplete: complete });
}

// ---------------------------------------------------------------- discovery

export type ImportHost = "omp" | "pi" | "opencode" | "codex";
export interface ImportSource {
	host: ImportHost;
	path: string;
	kind: "folder" | "db";
}

/**
 * Where each host keeps its history by default (existence is the caller's check). Mirrors the hosts'
 * own rules: omp honours PI_CODING_AGENT_DIR and, on Linux after `omp config migrate`, $XDG_DATA_HOME/omp;
 * pi honours PI_CODING_AGENT_DIR; OpenCode uses $XDG_DATA_HOME/opencode (default ~/.local/share, on macOS
 * too); Codex uses $CODEX_HOME (default ~/.codex).
 */
export function importSources(env: Record<string, string | undefined>, home: string): ImportSource[] {
	const join = (...p: string[]) => p.join("/").replace(/\/+/g, "/");
	const out: ImportSource[] = [];
	const agentDir = env.PI_CODING_AGENT_DIR;
	out.push({ host: "omp", path: join(home, ".omp/agent/sessions"), kind: "folder" });
	if (env.XDG_DATA_HOME) out.push({ host: "omp", path: join(env.XDG_DATA_HOME, "omp/sessions"), kind: "folder" });
	out.push({ host: "pi", path: join(home, ".pi/agent/sessions"), kind: "folder" });
	// the variable is shared by both hosts' code; whichever wrote there, the format is the same
	if (agentDir) out.push({ host: "pi", path: join(agentDir, "sessions"), kind: "folder" });
	out.push({ host: "opencode", path: join(env.XDG_DATA_HOME || join(home, ".local/share"), "opencode/opencode.db"), kind: "db" });
	out.push({ host: "codex", path: join(env.CODEX_HOME || join(home, ".codex"), "sessions"), kind: "folder" });
	return out;
}

export interface ClassifiedPath {
	kind: "file" | "folder" | "db" | "missing" | "unknown";
	/** For a file: whose record it is, from its first bytes (the name alone can lie). */
	host?: ImportHost;
}

/**
 * What a path given to `import` is. Reads at most the first 4 kB: SQLite's magic header marks OpenCode's
 * database; a JSONL file is told apart by its first entries (omp: a `title` line before the session
 * header, or an omp-style model_change `model:"provider/id"`; pi: the session header first; Codex: a
 * session_meta line).
 */
export async function classifyImportPath(p: string): Promise<ClassifiedPath> {
	const fs = await import("node:fs/promises");
	let stat: import("node:fs").Stats;
	try {
		stat = await fs.stat(p);
	} catch {
		return { kind: "missing" };
	}
	if (stat.isDirectory()) return { kind: "folder" };
	if (!stat.isFile()) return { kind: "unknown" };
	const handle = await fs.open(p, "r");
	let head: string;
	try {
		const buf = Buffer.alloc(4096);
		const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
		if (bytesRead >= 16 && buf.subarray(0, 16).toString("latin1") === "SQLite format 3\u0000") return { kind: "db", host: "opencode" };
		head = buf.subarray(0, bytesRead).toString("utf8");
	} finally {
		await handle.close();
	}
	const host = classifyJsonlHead(head, p);
	return host ? { kind: "file", host } : { kind: "unknown" };
}

/** Host of a JSONL record from its first lines (a pure helper of classifyImportPath). */
export function classifyJsonlHead(head: string, path = ""): ImportHost | undefined {
	// Codex's first line (session_meta with the full instructions) is longer than the head: match its start
	if (/^\{[^\n]{0,200}?"type"\s*:\s*"session_meta"/.test(head) || /(^|[\\/])rollout-[^\\/]*\.jsonl$/.test(path)) return "codex";
	const lines = head.split("\n").slice(0, 6).map(parseJsonLine).filter((x): x is Json => !!x);
	if (lines[0]?.type === "title") return "omp";
	const session = lines.find(l => l.type === "session");
	if (!session) return undefined;
	const change = lines.find(l => l.type === "model_change");
	if (change && typeof change.model === "string") return "omp";
	if (change && typeof change.modelId === "string") return "pi";
	// no model entry yet: fall back to where it lives
	return /[\\/]\.omp[\\/]|[\\/]omp[\\/]sessions/.test(path) ? "omp" : "pi";
}
