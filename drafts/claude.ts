// Draft (issue 14, phase 1): a PURE parser of Claude Code transcripts into the shared RecordedPrompt model
// (/work/notes/RECORDED.md). Lines in, typed data out: no I/O here, so the hook, `import` and tests share it.
// The lead moves this into langfuse.ts; the types below are copies of RECORDED.md's until then.
//
// What a Claude Code transcript is (2.1.332; see /work/shared/probes/claude/README.md):
//   - one JSON object per line, appended; `user` / `assistant` / `system` / `attachment` lines form a chain
//     through `uuid` / `parentUuid`; bookkeeping lines (`api-request*`, `cost-state`, …) stand outside it;
//   - an assistant response is written as ONE LINE PER CONTENT BLOCK, all with the same `message.id` and the
//     full usage repeated on each — so usage must be counted once per message.id;
//   - `api-request` (written just before each call) gives the call's start time and parameters, and points
//     (shapeHash) to an `api-request-shape` line with the system prompt and the tool definitions.
//
// Ids, resume and fork (why nothing is sent twice):
//   - a prompt's id is the `uuid` of its user line, a generation's id the API `message.id`, a tool's id the
//     `tool_use` id. None of them is derived from the session id, so the same record maps to the same ids
//     whichever file it is read from;
//   - `--resume` appends to the same file under the same session id: the cursor (offset + done ids) makes
//     the next run read only what is new;
//   - `--resume --fork-session` writes a NEW file (new session id) that first COPIES the history: same
//     uuids, message ids and timestamps, `sessionId` rewritten, and every copied assistant line gets a
//     `requestSessionId` naming the session the call was made in. Copied prompts belong to the original
//     session, which sent them already; the parser skips them (prompts up to the last line whose
//     requestSessionId differs from the file's session). Their messages still count as history (input).

/* ------------------------------------------------------------------ shared model (copy of RECORDED.md) */

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
export type LlmStep = {
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
	costUsd?: { input?: number; output?: number; total: number };
	stopReason?: string;
	error?: string;
};
export type ToolStep = {
	kind: "tool";
	id: string;
	name: string;
	startMs: number;
	endMs: number;
	input: unknown;
	output: unknown;
	isError: boolean;
	subagent?: { sessionId?: string; prompts: RecordedPrompt[] };
};
export type RecordedStep =
	| LlmStep
	| ToolStep
	| { kind: "compaction"; id: string; startMs: number; endMs: number; summary?: string; tokensBefore?: number }
	| { kind: "event"; id: string; at: number; name: string; level?: "WARNING" | "ERROR"; message?: string };

/* ------------------------------------------------------------------ options, cursor */

/** A subagent's own transcript `<session>/subagents/agent-<agentId>.jsonl` and its `.meta.json`. */
export interface ClaudeSubagentFile {
	agentId: string;
	lines: string[];
	/**
	 * Parsed agent-<id>.meta.json: `toolUseId` links it to the parent's Agent call, `finished` says it ended.
	 * Claude Code writes this file only when the agent ENDS (after SubagentStop ran), so a missing meta means
	 * "still running" — or "just ended" when this run is the SubagentStop hook: then set `finished`.
	 */
	meta?: { toolUseId?: string; agentType?: string; description?: string; finished?: boolean; requestShape?: string; model?: string };
	/** The caller knows the agent ended (SubagentStop named its agent_id), whatever meta says. */
	finished?: boolean;
}

export interface ClaudeParseOptions {
	/** The file's session id (default: from the lines). Copied (forked) history is recognised against it. */
	sessionId?: string;
	/** Prompt ids already sent: skipped (see ClaudeCursor). */
	done?: readonly string[];
	/** Subagent transcripts of this session; linked to the parent's Agent tool call. */
	subagents?: readonly ClaudeSubagentFile[];
	/** true at SessionEnd / import: nothing will be appended any more, so a prompt left open is complete (aborted). */
	final?: boolean;
	/**
	 * Lines of the same file BEFORE `lines` (e.g. before the cursor), used only to look things up, never sent:
	 * the chat history for generation inputs, and `api-request-shape` lines — Claude Code writes each shape
	 * (system prompt + tool definitions) once per file, so a resumed run's calls point at a shape written by an
	 * earlier run. Pass at least the shape lines (a cheap substring filter on "api-request-shape" will do).
	 */
	context?: readonly string[];
}

/**
 * What a hook remembers between runs, per transcript file: read from `offset` (bytes) next time; `done` = ids of
 * prompts at or after offset that were sent already. The offset stops at the first UNFINISHED prompt (e.g. one
 * whose background subagent still runs), so later finished prompts are sent and listed in `done` meanwhile.
 */
export interface ClaudeCursor {
	offset: number;
	done: string[];
}

/* ------------------------------------------------------------------ raw line types (only what we read) */

interface Block {
	type?: string;
	text?: string;
	thinking?: string;
	id?: string;
	name?: string;
	input?: unknown;
	tool_use_id?: string;
	content?: unknown;
	is_error?: boolean;
}
interface RawUsage {
	input_tokens?: number;
	output_tokens?: number;
	cache_read_input_tokens?: number;
	cache_creation_input_tokens?: number;
	cache_creation?: { ephemeral_5m_input_tokens?: number; ephemeral_1h_input_tokens?: number };
	output_tokens_details?: { thinking_tokens?: number };
}
interface RawLine {
	type?: string;
	uuid?: string;
	parentUuid?: string | null;
	sessionId?: string;
	requestSessionId?: string;
	timestamp?: string;
	isMeta?: boolean;
	isSidechain?: boolean;
	isCompactSummary?: boolean;
	isVisibleInTranscriptOnly?: boolean;
	isApiErrorMessage?: boolean;
	subtype?: string;
	compactMetadata?: {
		trigger?: string;
		preTokens?: number;
		postTokens?: number;
		durationMs?: number;
		preservedSegment?: { headUuid?: string; anchorUuid?: string; tailUuid?: string };
	};
	promptId?: string;
	agentId?: string;
	cwd?: string;
	gitBranch?: string;
	version?: string;
	permissionMode?: string;
	entrypoint?: string;
	requestRef?: string;
	message?: { id?: string; role?: string; model?: string; content?: string | Block[]; stop_reason?: string | null; usage?: RawUsage };
	toolUseResult?: unknown;
	// api-request
	id?: string;
	shapeHash?: string;
	querySource?: string;
	params?: { model?: string; max_tokens?: number; thinking?: { type?: string }; output_config?: { effort?: string } };
	// api-request-shape
	shape?: { system?: Block[]; tools?: { name?: string; description?: string; input_schema?: unknown }[] };
}

/** One parsed line with its index (for cursor offsets). */
interface Line {
	i: number;
	raw: RawLine;
	ms: number;
}

/* ------------------------------------------------------------------ small helpers */

function parseLines(lines: readonly string[]): (RawLine | undefined)[] {
	return lines.map(l => {
		if (!l.trim()) return undefined;
		try {
			const v: unknown = JSON.parse(l);
			return v && typeof v === "object" ? (v as RawLine) : undefined;
		} catch {
			return undefined; // a line still being written by Claude Code: the prompt holding it stays open
		}
	});
}

const ms = (iso: string | undefined): number => (iso ? Date.parse(iso) || 0 : 0);
const blocks = (c: string | Block[] | undefined): Block[] => (typeof c === "string" ? [{ type: "text", text: c }] : Array.isArray(c) ? c : []);
const textOf = (c: string | Block[] | undefined): string =>
	blocks(c)
		.filter(b => b.type === "text")
		.map(b => b.text ?? "")
		.join("\n");

/** A tool_result's content as text (Claude Code sends a string or a list of text parts). */
function resultText(c: unknown): string {
	if (typeof c === "string") return c;
	if (!Array.isArray(c)) return c === undefined ? "" : JSON.stringify(c);
	return (c as Block[]).map(b => (b.type === "text" ? (b.text ?? "") : b.type === "image" ? "[image]" : "")).join("\n");
}

/** A user line that starts a prompt: typed text (or a task-notification), not a tool result or injected reminder. */
function isPromptLine(r: RawLine): boolean {
	if (r.type !== "user" || r.isMeta || r.isCompactSummary || r.isVisibleInTranscriptOnly || !r.message) return false;
	// a slash command's output is written as a user line after the command: part of the command's prompt
	if (LOCAL_OUTPUT.test(textOf(r.message.content))) return false;
	return !blocks(r.message.content).some(b => b.type === "tool_result");
}

const LOCAL_OUTPUT = /^<local-command-(stdout|stderr)>/;

/** A slash command (`/compact`, …) as typed: Claude Code records it as <command-name>/x</command-name>…<command-args>y</command-args>. */
function commandText(text: string): string | undefined {
	const name = /<command-name>([^<]*)<\/command-name>/.exec(text)?.[1];
	if (!name) return undefined;
	const args = /<command-args>([^<]*)<\/command-args>/.exec(text)?.[1]?.trim();
	return args ? `${name} ${args}` : name;
}

/** A line that is part of the chat (goes into the model's input). */
const isChatLine = (r: RawLine): boolean => (r.type === "user" || r.type === "assistant") && !!r.message;

/** Usage under the non-overlapping keys of TokenCounts; Langfuse's input total = input + cacheRead + cacheWrite. */
function tokenCounts(u: RawUsage | undefined): TokenCounts | undefined {
	if (!u) return undefined;
	const n = (v: number | undefined) => (typeof v === "number" && Number.isFinite(v) ? v : 0);
	const thinking = n(u.output_tokens_details?.thinking_tokens);
	const t: TokenCounts = {
		input: n(u.input_tokens),
		// Anthropic's output_tokens includes thinking; the model wants them apart
		output: n(u.output_tokens) - thinking,
		cacheRead: n(u.cache_read_input_tokens),
		cacheWrite: n(u.cache_creation_input_tokens),
	};
	if (u.cache_creation) {
		// the TTL split is what makes 1-hour writes priceable at their own (higher) rate
		t.cacheWrite5m = n(u.cache_creation.ephemeral_5m_input_tokens);
		t.cacheWrite1h = n(u.cache_creation.ephemeral_1h_input_tokens);
	}
	if (thinking) t.reasoning = thinking;
	t.total = n(u.input_tokens) + n(u.output_tokens) + n(u.cache_read_input_tokens) + n(u.cache_creation_input_tokens);
	return t;
}

/* ------------------------------------------------------------------ index over one file */

interface Index {
	lines: (RawLine | undefined)[];
	byUuid: Map<string, Line>;
	apiRequests: Map<string, Line>;
	shapes: Map<string, NonNullable<RawLine["shape"]>>;
	sessionId: string;
	/** Index of a last line that is not empty and not JSON (being written), else -1. */
	halfWritten: number;
	/** tool_use id → the user line holding its tool_result */
	results: Map<string, Line>;
	/** tool_use ids of Agent calls whose background agent a <task-notification> reported as ended */
	notified: Set<string>;
	/** compaction summary uuid (anchor) → the messages kept verbatim after it (compactMetadata.preservedSegment) */
	preserved: Map<string, { head: string; tail: string }>;
}

function indexLines(lines: readonly string[], sessionId?: string): Index {
	const parsed = parseLines(lines);
	const byUuid = new Map<string, Line>();
	const apiRequests = new Map<string, Line>();
	const shapes = new Map<string, NonNullable<RawLine["shape"]>>();
	const preserved = new Map<string, { head: string; tail: string }>();
	const results = new Map<string, Line>();
	const notified = new Set<string>();
	let sid = sessionId;
	parsed.forEach((raw, i) => {
		if (!raw) return;
		const line = { i, raw, ms: ms(raw.timestamp) };
		if (raw.uuid) byUuid.set(raw.uuid, line);
		if (raw.type === "api-request" && raw.id) apiRequests.set(raw.id, line);
		if (raw.type === "api-request-shape" && raw.shapeHash && raw.shape) shapes.set(raw.shapeHash, raw.shape);
		if (raw.type === "user") for (const b of blocks(raw.message?.content)) if (b.type === "tool_result" && b.tool_use_id) results.set(b.tool_use_id, line);
		if (raw.type === "user" && typeof raw.message?.content === "string" && raw.message.content.startsWith("<task-notification>")) {
			const id = /<tool-use-id>([^<]+)<\/tool-use-id>/.exec(raw.message.content)?.[1];
			const status = /<status>([^<]+)<\/status>/.exec(raw.message.content)?.[1];
			if (id && status !== "running") notified.add(id);
		}
		const kept = raw.compactMetadata?.preservedSegment;
		if (kept?.anchorUuid && kept.headUuid && kept.tailUuid) preserved.set(kept.anchorUuid, { head: kept.headUuid, tail: kept.tailUuid });
		if (!sid && raw.sessionId && isChatLine(raw)) sid = raw.sessionId;
	});
	const last = lines.length - 1;
	const halfWritten = last >= 0 && lines[last].trim() && !parsed[last] ? last : -1;
	return { lines: parsed, byUuid, apiRequests, shapes, sessionId: sid ?? "", halfWritten, preserved, results, notified };
}

/* ------------------------------------------------------------------ segments: one per prompt */

interface Segment {
	first: number; // line index of the prompt line (or of the isMeta lines right before it that belong to it)
	end: number; // exclusive
	prompt: Line;
	copied: boolean;
	complete: boolean;
	/** another prompt follows in the file */
	next: boolean;
	/** the next prompt's time (compactions are assigned to prompts by time, see compactions()) */
	untilMs: number;
}

/** Split the file into prompts: each runs from its prompt line to the next one. */
function segments(ix: Index, o: ClaudeParseOptions): Segment[] {
	const starts: number[] = [];
	ix.lines.forEach((r, i) => {
		if (r && !r.isSidechain && isPromptLine(r)) starts.push(i);
	});
	// fork: the copied history ends at the last assistant line made in another session
	let lastCopied = -1;
	ix.lines.forEach((r, i) => {
		if (r?.type === "assistant" && r.requestSessionId && r.requestSessionId !== ix.sessionId) lastCopied = i;
	});
	const segs: Segment[] = [];
	starts.forEach((s, k) => {
		const end = k + 1 < starts.length ? starts[k + 1] : ix.lines.length;
		// isMeta reminders written just before a prompt (task-notification turns) belong to that prompt
		let first = s;
		while (first > 0 && ix.lines[first - 1]?.isMeta && ix.lines[first - 1]?.type === "user") first--;
		const raw = ix.lines[s] as RawLine;
		segs.push({ first, end, prompt: { i: s, raw, ms: ms(raw.timestamp) }, copied: s < lastCopied, complete: false, next: k + 1 < starts.length, untilMs: Infinity });
	});
	for (let k = 0; k + 1 < segs.length; k++) segs[k].untilMs = segs[k + 1].prompt.ms;
	for (const seg of segs) seg.complete = o.final === true || isComplete(ix, seg, o);
	return segs;
}

/** A prompt is complete when its last response did not ask for tools, every tool got a result, no line is
 *  half-written, and every subagent it started has finished (background agents end after Stop). */
function isComplete(ix: Index, seg: Segment, o: ClaudeParseOptions, sidechain = false): boolean {
	let lastStop: string | null | undefined;
	let sawAssistant = false;
	let localOutput = false;
	const pending = new Set<string>();
	const agentCalls: string[] = [];
	for (let i = seg.first; i < seg.end; i++) {
		const r = ix.lines[i];
		if (!r) {
			if (ix.halfWritten === i) return false; // Claude Code is still writing this line
			continue;
		}
		if (!!r.isSidechain !== sidechain) continue;
		if (r.type === "assistant" && r.message) {
			sawAssistant = true;
			lastStop = r.message.stop_reason;
			for (const b of blocks(r.message.content))
				if (b.type === "tool_use" && b.id) {
					pending.add(b.id);
					if (b.name === "Agent" || b.name === "Task") agentCalls.push(b.id);
				}
		}
		if (r.type === "user" && LOCAL_OUTPUT.test(textOf(r.message?.content))) localOutput = true;
		if (r.type === "user")
			for (const b of blocks(r.message?.content))
				if (b.type === "tool_result" && b.tool_use_id) pending.delete(b.tool_use_id);
	}
	// a slash command runs without the model; it is done once its output line is written
	// (or, never answered, once the user went on to the next prompt)
	if (!sawAssistant) return localOutput || seg.next;
	if (lastStop === "tool_use" || lastStop == null || pending.size) return false;
	// a background agent still running: wait for a later hook run
	return agentCalls.every(id => agentDone(ix, id, o));
}

/**
 * Whether the agent started by the Agent call `toolUseId` has ended. A foreground agent runs inside the tool
 * call (its result's status is "completed"); a background one returns "async_launched" at once and ends later:
 * then a `<task-notification>` naming the tool-use id, the meta file (written only when it ends) or the caller
 * (SubagentStop) tells.
 */
function agentDone(ix: Index, toolUseId: string, o: ClaudeParseOptions): boolean {
	const result = ix.results.get(toolUseId)?.raw.toolUseResult;
	const status = result && typeof result === "object" ? (result as { status?: unknown }).status : undefined;
	if (typeof status === "string" && status !== "async_launched") return true;
	if (ix.notified.has(toolUseId)) return true;
	const sub = findSubagent(toolUseId, agentIdOf(result), o);
	return sub?.meta?.finished === true || sub?.finished === true;
}

/* ------------------------------------------------------------------ chat reconstruction */

/** The chat history up to (not including) the line `uuid`, following parentUuid (so rewinds/branches are right). */
function historyBefore(ix: Index, uuid: string | null | undefined, limit: number): ChatMessage[] {
	const chain: Line[] = [];
	const seen = new Set<string>();
	const walk = (from: string | null | undefined, stopAfter?: string) => {
		let cur = from ? ix.byUuid.get(from) : undefined;
		while (cur && !seen.has(cur.raw.uuid ?? "")) {
			const id = cur.raw.uuid ?? "";
			seen.add(id);
			// after a compaction the model gets: summary, the messages kept verbatim, then what followed
			const kept = ix.preserved.get(id);
			if (kept) walk(kept.tail, kept.head);
			if (isChatLine(cur.raw)) chain.push(cur);
			if (id === stopAfter) return;
			cur = cur.raw.parentUuid ? ix.byUuid.get(cur.raw.parentUuid) : undefined;
		}
	};
	walk(uuid);
	chain.reverse();
	// parallel tool calls branch the chain: each tool_result's parent is its own tool_use line, and the chain
	// continues from the last result only. Put the results left on side branches back (in file order).
	const have = new Set(chain.flatMap(l => blocks(l.raw.message?.content).filter(b => b.type === "tool_result").map(b => b.tool_use_id ?? "")));
	const missing: Line[] = [];
	for (const l of chain)
		if (l.raw.type === "assistant")
			for (const b of blocks(l.raw.message?.content)) {
				const res = b.type === "tool_use" && b.id && !have.has(b.id) ? ix.results.get(b.id) : undefined;
				if (res && res.i < limit) missing.push(res);
			}
	for (const m of missing) {
		const at = chain.findIndex(l => l.i > m.i);
		chain.splice(at < 0 ? chain.length : at, 0, m);
	}
	return toChatML(chain.map(l => l.raw));
}

/** Transcript lines (in order) to ChatML: assistant block lines merged by message.id, tool results as role "tool". */
function toChatML(lines: readonly RawLine[]): ChatMessage[] {
	const out: ChatMessage[] = [];
	let lastAssistantId: string | undefined;
	for (const r of lines) {
		const m = r.message;
		if (!m) continue;
		if (r.type === "assistant") {
			const prev = out.at(-1);
			if (prev && prev.role === "assistant" && m.id && m.id === lastAssistantId) appendAssistant(prev, blocks(m.content));
			else out.push(appendAssistant({ role: "assistant", content: "" }, blocks(m.content)));
			lastAssistantId = m.id;
			continue;
		}
		lastAssistantId = undefined;
		const bs = blocks(m.content);
		const results = bs.filter(b => b.type === "tool_result");
		for (const b of results) out.push({ role: "tool", tool_call_id: b.tool_use_id ?? "", content: resultText(b.content) });
		const rest = bs.filter(b => b.type !== "tool_result");
		if (rest.length) out.push({ role: "user", content: typeof m.content === "string" ? m.content : textOrParts(rest) });
	}
	return out;
}

/** Text parts joined; anything else (images) replaced by a marker so no binary data travels. */
function textOrParts(bs: readonly Block[]): string {
	return bs.map(b => (b.type === "text" ? (b.text ?? "") : `[${b.type ?? "part"}]`)).join("\n");
}

function appendAssistant(msg: ChatMessage, bs: readonly Block[]): ChatMessage {
	for (const b of bs) {
		if (b.type === "text" && b.text) msg.content = msg.content ? `${String(msg.content)}\n${b.text}` : b.text;
		else if ((b.type === "thinking" || b.type === "redacted_thinking") && b.thinking) msg.reasoning = msg.reasoning ? `${msg.reasoning}\n${b.thinking}` : b.thinking;
		else if (b.type === "tool_use" && b.id)
			(msg.tool_calls ??= []).push({ id: b.id, type: "function", function: { name: b.name ?? "", arguments: JSON.stringify(b.input ?? {}) } });
	}
	return msg;
}

/* ------------------------------------------------------------------ steps */

interface Gen {
	id: string;
	lines: Line[];
}

function llmStep(ix: Index, g: Gen, prevMs: number): LlmStep {
	const first = g.lines[0].raw;
	const last = g.lines[g.lines.length - 1].raw;
	const req = first.requestRef ? ix.apiRequests.get(first.requestRef) : undefined;
	const shape = req?.raw.shapeHash ? ix.shapes.get(req.raw.shapeHash) : undefined;
	const input = historyBefore(ix, first.parentUuid, g.lines[0].i);
	const system = shape?.system ? textOf(shape.system) : "";
	if (system) input.unshift({ role: "system", content: system });
	const output = appendAssistant({ role: "assistant", content: "" }, g.lines.flatMap(l => blocks(l.raw.message?.content)));
	const p = req?.raw.params;
	const parameters: Record<string, string | number | boolean> = {};
	if (p?.max_tokens !== undefined) parameters.max_tokens = p.max_tokens;
	if (p?.thinking?.type) parameters.thinking = p.thinking.type;
	if (p?.output_config?.effort) parameters.effort = p.output_config.effort;
	const step: LlmStep = {
		kind: "llm",
		id: g.id,
		// the api-request line is written right before the call; without it (copied or older files) the call
		// started at the latest when the line before it (prompt or tool result) was written
		startMs: req?.ms ?? prevMs,
		endMs: g.lines[g.lines.length - 1].ms,
		model: first.message?.model,
		provider: "anthropic",
		input,
		output,
		// usage repeats on every block line of a message: take it ONCE (the last line holds the final one)
		usage: tokenCounts(last.message?.usage),
		stopReason: last.message?.stop_reason ?? undefined,
	};
	if (Object.keys(parameters).length) step.parameters = parameters;
	if (shape?.tools?.length)
		step.tools = shape.tools.map(t => ({ type: "function", function: { name: t.name ?? "", description: t.description, parameters: t.input_schema } }));
	return step;
}

/**
 * Compactions during a prompt. Claude Code writes a `compact_boundary` system line (parentUuid null: the chain
 * restarts there) and the summary as an `isCompactSummary` user line. A manual `/compact` writes them BEFORE the
 * command's own prompt line, so they are assigned by time, not by position. The compaction's own API calls are
 * not in the transcript (they only show in cost-state totals).
 */
function compactions(ix: Index, seg: Segment, sidechain: boolean): RecordedStep[] {
	const out: RecordedStep[] = [];
	ix.lines.forEach((r, i) => {
		if (r?.type !== "system" || r.subtype !== "compact_boundary" || !!r.isSidechain !== sidechain) return;
		const at = ms(r.timestamp);
		if (at < seg.prompt.ms || at >= seg.untilMs) return;
		const summaryLine = ix.lines.find(x => x?.isCompactSummary && x.parentUuid === r.uuid);
		const m = r.compactMetadata;
		out.push({
			kind: "compaction",
			id: r.uuid ?? String(i),
			startMs: at - (m?.durationMs ?? 0),
			endMs: at,
			summary: summaryLine ? textOf(summaryLine.message?.content) : undefined,
			tokensBefore: m?.preTokens,
		});
	});
	return out;
}

const stepStart = (s: RecordedStep): number => (s.kind === "event" ? s.at : s.startMs);

/** The failed call(s) before a synthetic API-error line: the attempts are the api-request lines no response refers to. */
function errorStep(ix: Index, seg: Segment, line: Line, error: string): LlmStep {
	const answered = new Set<string>();
	let after = seg.first;
	for (let i = seg.first; i < line.i; i++) {
		const r = ix.lines[i];
		if (r?.type === "assistant" && r.requestRef) {
			answered.add(r.requestRef);
			after = i;
		}
	}
	const attempts: Line[] = [];
	for (let i = after; i < line.i; i++) {
		const r = ix.lines[i];
		if (r?.type === "api-request" && r.id && !answered.has(r.id)) attempts.push({ i, raw: r, ms: ms(r.timestamp) });
	}
	const first = attempts[0];
	const shape = first?.raw.shapeHash ? ix.shapes.get(first.raw.shapeHash) : undefined;
	const input = historyBefore(ix, line.raw.parentUuid, line.i);
	if (shape?.system) input.unshift({ role: "system", content: textOf(shape.system) });
	const step: LlmStep = {
		kind: "llm",
		id: line.raw.message?.id ?? line.raw.uuid ?? String(line.i),
		startMs: first?.ms ?? line.ms,
		endMs: line.ms,
		model: first?.raw.params?.model,
		provider: "anthropic",
		parameters: { attempts: attempts.length },
		input,
		output: { role: "assistant", content: error },
		error,
	};
	return step;
}

/** The subagent transcripts started by the Agent call `toolUseId`, parsed as their own prompts. */
/** The Agent tool's structured result names the agent (`agentId`), also while it still runs in the background. */
function agentIdOf(result: unknown): string | undefined {
	const id = result && typeof result === "object" ? (result as { agentId?: unknown }).agentId : undefined;
	return typeof id === "string" ? id : undefined;
}

/** meta.toolUseId is the sure link; the agentId from the tool result works before the meta file exists. */
function findSubagent(toolUseId: string, agentId: string | undefined, o: ClaudeParseOptions): ClaudeSubagentFile | undefined {
	return o.subagents?.find(s => s.meta?.toolUseId === toolUseId) ?? (agentId ? o.subagents?.find(s => s.agentId === agentId) : undefined);
}

function subagentOf(ix: Index, toolUseId: string, result: unknown, o: ClaudeParseOptions): ToolStep["subagent"] {
	const sub = findSubagent(toolUseId, agentIdOf(result), o);
	if (!sub) return undefined;
	const sessionId = ix.sessionId;
	// once the agent ended its transcript is complete, whatever its last line says
	const prompts = parsePrompts(sub.lines, { sessionId, subagents: o.subagents, final: agentDone(ix, toolUseId, o) || o.final }, true);
	for (const p of prompts) p.metadata = { ...p.metadata, agentId: sub.agentId, agentType: sub.meta?.agentType, description: sub.meta?.description };
	return { sessionId, prompts };
}

function promptOf(ix: Index, seg: Segment, o: ClaudeParseOptions, sidechain: boolean): RecordedPrompt {
	const p = seg.prompt.raw;
	// generations and tools in the order their first line appears; generations are built once all their lines are in
	const order: (Gen | ToolStep | LlmStep)[] = [];
	const gens = new Map<string, Gen>();
	const tools = new Map<string, ToolStep>();
	let endMs = seg.prompt.ms;
	let error: string | undefined;
	for (let i = seg.first; i < seg.end; i++) {
		const r = ix.lines[i];
		if (!r || !!r.isSidechain !== sidechain || !r.message) continue;
		const line: Line = { i, raw: r, ms: ms(r.timestamp) };
		// the next prompt's summary/caveat lines can sit before it in the file: they do not extend this prompt
		if (line.ms && !r.isCompactSummary && line.ms < seg.untilMs) endMs = Math.max(endMs, line.ms);
		if (r.type === "assistant") {
			// API errors are written as assistant lines with the model "<synthetic>" and zero usage, after
			// Claude Code's retries (one api-request line per attempt): a generation with an error, no usage
			if (r.isApiErrorMessage || r.message.model === "<synthetic>") {
				error = textOf(r.message.content) || "API error";
				order.push(errorStep(ix, seg, line, error));
				continue;
			}
			const id = r.message.id ?? r.uuid ?? String(i);
			let g = gens.get(id);
			if (!g) {
				g = { id, lines: [] };
				gens.set(id, g);
				order.push(g);
			}
			g.lines.push(line);
			for (const b of blocks(r.message.content))
				if (b.type === "tool_use" && b.id) {
					// the tool_use line is written when its block finished streaming: the tool starts then
					const t: ToolStep = { kind: "tool", id: b.id, name: b.name ?? "", startMs: line.ms, endMs: line.ms, input: b.input ?? {}, output: undefined, isError: false };
					tools.set(b.id, t);
					order.push(t);
				}
		} else if (r.type === "user") {
			for (const b of blocks(r.message.content)) {
				if (b.type !== "tool_result" || !b.tool_use_id) continue;
				const t = tools.get(b.tool_use_id);
				if (!t) continue;
				t.endMs = Math.max(t.startMs, line.ms);
				t.output = resultText(b.content);
				t.isError = b.is_error === true;
				if (t.name === "Agent" || t.name === "Task") t.subagent = subagentOf(ix, t.id, r.toolUseResult, o);
			}
		}
	}
	// a generation without its api-request line started at the latest when the step before it ended
	let lastEnd = seg.prompt.ms;
	const steps: RecordedStep[] = order.map(x => {
		const step = "kind" in x ? x : llmStep(ix, x, lastEnd);
		lastEnd = Math.max(lastEnd, step.endMs);
		return step;
	});
	for (const c of compactions(ix, seg, sidechain)) {
		const at = steps.findIndex(s => stepStart(s) > stepStart(c));
		steps.splice(at < 0 ? steps.length : at, 0, c);
		endMs = Math.max(endMs, stepStart(c));
	}
	// background subagents end after the parent's turn: the prompt ends with its last child
	for (const s of steps) if (s.kind === "tool" && s.subagent) for (const c of s.subagent.prompts) endMs = Math.max(endMs, c.endMs);
	const lastGen = [...steps].reverse().find((s): s is LlmStep => s.kind === "llm" && !s.error);
	let answer = lastGen && typeof lastGen.output.content === "string" && lastGen.output.content ? lastGen.output.content : undefined;
	// a slash command has no model answer; its output line is the closest thing
	for (let i = seg.first; i < seg.end && !answer; i++) {
		const t = textOf(ix.lines[i]?.message?.content);
		if (ix.lines[i]?.type === "user" && LOCAL_OUTPUT.test(t)) answer = t.replace(/<\/?local-command-(stdout|stderr)>/g, "").trim();
	}
	const typed = typeof p.message?.content === "string" ? p.message.content : textOrParts(blocks(p.message?.content));
	const prompt: RecordedPrompt = {
		id: p.uuid ?? String(seg.prompt.i),
		sessionId: ix.sessionId,
		startMs: seg.prompt.ms,
		endMs,
		text: commandText(typed) ?? typed,
		steps,
		metadata: {
			promptId: p.promptId,
			cwd: p.cwd,
			gitBranch: p.gitBranch,
			version: p.version,
			permissionMode: p.permissionMode,
			entrypoint: p.entrypoint,
		},
	};
	if (answer) prompt.answer = answer;
	if (error) prompt.error = error;
	// open at SessionEnd/import (final), or never answered before the user went on
	if (!isComplete(ix, seg, { ...o, final: false }, sidechain) || (!order.length && !answer)) prompt.aborted = true;
	return prompt;
}

function parsePrompts(lines: readonly string[], o: ClaudeParseOptions, sidechain: boolean): RecordedPrompt[] {
	const skip = o.context?.length ?? 0;
	const ix = indexLines(skip ? [...(o.context ?? []), ...lines] : lines, o.sessionId);
	const done = new Set(o.done ?? []);
	const segs = (sidechain ? sidechainSegments(ix, o) : segments(ix, o)).filter(s => s.prompt.i >= skip);
	return segs.filter(s => s.complete && !s.copied && !done.has(s.prompt.raw.uuid ?? "")).map(s => promptOf(ix, s, o, sidechain));
}

/** A subagent file is one prompt (its task) whose lines are all isSidechain. */
function sidechainSegments(ix: Index, o: ClaudeParseOptions): Segment[] {
	const start = ix.lines.findIndex(r => !!r && r.type === "user" && !!r.message && !r.isMeta);
	if (start < 0) return [];
	const raw = ix.lines[start] as RawLine;
	const seg: Segment = { first: start, end: ix.lines.length, prompt: { i: start, raw, ms: ms(raw.timestamp) }, copied: false, complete: false, next: false, untilMs: Infinity };
	seg.complete = o.final === true || isComplete(ix, seg, o, true);
	return [seg];
}

/* ------------------------------------------------------------------ public */

/**
 * The finished prompts of a Claude Code transcript (main thread), each with its generations, tools and
 * subagents. `lines` = the file's text split on "\n" (from the cursor offset or the start; the history
 * before the first line given is missing from generation inputs). Skips prompts in `done` and prompts a
 * fork copied from its parent session.
 */
export function parseClaudeTranscript(lines: readonly string[], options: ClaudeParseOptions = {}): RecordedPrompt[] {
	return parsePrompts(lines, options, false);
}

/**
 * The cursor after sending what parseClaudeTranscript returned for the same lines and options: `lines` were
 * read from byte `offset` of the file (each followed by "\n", except a trailing partial line).
 */
export function nextClaudeCursor(lines: readonly string[], offset: number, options: ClaudeParseOptions = {}): ClaudeCursor {
	const skip = options.context?.length ?? 0;
	const ix = indexLines(skip ? [...(options.context ?? []), ...lines] : lines, options.sessionId);
	const segs = segments(ix, options).filter(s => s.prompt.i >= skip);
	const open = segs.find(s => !s.complete && !s.copied);
	// everything before the first open prompt is finished: skip it for good
	const stopLine = open ? Math.max(open.first, skip) : skip + completeLinesEnd(lines);
	let bytes = offset;
	for (let i = skip; i < stopLine; i++) bytes += Buffer.byteLength(lines[i - skip], "utf8") + 1;
	const done = segs.filter(s => s.first >= stopLine && (s.complete || s.copied)).map(s => s.prompt.raw.uuid ?? "");
	return { offset: bytes, done };
}

/** Lines that end with "\n": a last element of split("\n") that is not empty is still being written. */
function completeLinesEnd(lines: readonly string[]): number {
	return lines.length && lines[lines.length - 1] !== "" ? lines.length - 1 : Math.max(0, lines.length - 1);
}
