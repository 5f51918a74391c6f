/**
 * langfuse.ts — every Oh My Pi, pi, OpenCode, Codex and Claude Code session as a clean Langfuse trace tree.
 *
 * Drop this one file into `~/.omp/agent/extensions/`, `~/.pi/agent/extensions/` or `.opencode/plugin/`,
 * set LANGFUSE_PUBLIC_KEY / LANGFUSE_SECRET_KEY (and LANGFUSE_HOST), and keep working. Run it directly
 * (`bun langfuse.ts help`) for the commands around it.
 *
 * INDEX — the file reads top to bottom as the data flows; grep a tag (e.g. "§5 Transport") to jump.
 *   §0 Basics      constants, errorText, oneLine, call, ids, Logger — used by every section
 *   §1 Config      environment variables → one immutable Config (bad values: one line, then a default)
 *   §2 Record      host-neutral model: session → prompt (trace) → turn → generation | tool | span | event;
 *                  any host's or provider's messages → ChatML (ChatRequest, chatMessagesOf, chatOutput, chatTools)
 *   §3 Sanitize    redact, drop images, deep-truncate; the privacy policy (prepareRecord); chat inputs
 *                  cleaned message by message once per process, kept under Langfuse's UI limit (prepareChat)
 *   §4 Encode      records → OTLP/HTTP JSON spans | legacy ingestion events
 *   §5 Transport   queue → encoded once, in slices → spool per project (write-ahead) → gzip POST, retry → delete
 *   §6 Host kit    runtime, session claims, safeOn/guarded, host content helpers, status bar, /langfuse,
 *                  recorded transcripts → recorder, record-file cursors and locks for hook commands
 *   §7 Adapters    §7.1 omp/pi (`pi.on`), §7.2 OpenCode (hooks object), §7.3 Codex (rollout files),
 *                  §7.4 Claude Code (transcripts), §7.5 history import (the hosts' own records → the same traces),
 *                  §7.6 the one default export
 *   §8 CLI         doctor, flush, import, codex-*, claude-* — runs only as `bun langfuse.ts`, never inside a host
 *   Appendix       the secret redactor: patterns and engine
 *
 * Where does X happen? A tool call becomes a span: its adapter calls recorder.startTool/endTool (§7),
 * SessionRecorder.finish emits the record (§2), prepareRecord cleans it (§3), encodeRecord writes it (§4),
 * the Exporter sends it (§5). An LLM call's request: the adapter wraps the host's messages in a
 * ChatRequest (§2, references only), prepareChat converts and cleans it at flush (§3).
 *
 * Rules every section keeps: no exception ever reaches a host; nothing awaits the network inside a
 * hook the host awaits inline; every timer is unref'd; memory is bounded; the secret key never appears
 * in a log line, an error, a payload or the spool.
 */

import { createHash, randomUUID } from "node:crypto";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";


// ════════════════════════════════════════════════════════════════════════════════════════════════
// §0 Basics — constants and the small helpers every section uses.
// ════════════════════════════════════════════════════════════════════════════════════════════════

const VERSION = "0.1.0";
const LOG_PREFIX = "[langfuse]";
/**
 * Requests stay under this many bytes of body on the wire (Langfuse documents 3.5 MB per batch); one
 * encoded item never exceeds it even uncompressed, so any single item can always be sent.
 */
const MAX_REQUEST_BYTES = 3_400_000;
/**
 * A compressed request carries at most this much JSON once inflated. Langfuse's OTLP route reads the raw
 * body and gunzips it with no limit of its own, and the official SDK sends ~30 MB batches; half that
 * bounds what one request costs the server while a busy session's spans still go in a handful of them.
 */
const MAX_INFLATED_REQUEST_BYTES = 16_000_000;
/** Every network request is aborted after this long. */
const REQUEST_TIMEOUT_MS = 10_000;
/** What a host may spend waiting for our final flush at shutdown (omp kills after 2 s). */
const SHUTDOWN_BUDGET_MS = 1_500;

function errorText(error: unknown): string {
	if (error instanceof Error) return `${error.name}: ${error.message}`;
	try {
		return String(error);
	} catch {
		return "unprintable error";
	}
}

function formatBytes(bytes: number): string {
	if (bytes < 1024) return `${bytes} B`;
	if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
	return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/**
 * The first line, shortened between words: a cut inside a pasted token would hide it from the redactor.
 * Reads only that line (a failed tool's whole output is never copied to find it).
 */
function oneLine(text: string, max: number): string {
	const start = text.search(/\S/);
	if (start < 0) return "";
	let end = text.indexOf("\n", start);
	if (end < 0) end = text.length;
	while (end > start && /\s/.test(text[end - 1]!)) end--;
	if (end - start <= max) return text.slice(start, end);
	const head = text.slice(start, start + max - 1);
	const lastSpace = head.search(/\s\S*$/);
	return `${lastSpace > 0 ? head.slice(0, lastSpace) : ""}…`;
}

/** A non-empty string, or undefined: host fields are read through these, never trusted. */
const stringOr = (value: unknown): string | undefined => (typeof value === "string" && value ? value : undefined);
/** A finite number, or undefined (NaN, Infinity and non-numbers are not data). */
const finite = (value: unknown): number | undefined => (typeof value === "number" && Number.isFinite(value) ? value : undefined);

/** Reads a host getter that may throw or be missing. */
function call<T>(read: () => T): T | undefined {
	try {
		return read();
	} catch {
		return undefined;
	}
}

/** 32 and 16 hex characters from a v4 UUID (8-4-4-4-12): its groups without the hyphens. */
const randomTraceId = () => {
	const uuid = randomUUID();
	return uuid.slice(0, 8) + uuid.slice(9, 13) + uuid.slice(14, 18) + uuid.slice(19, 23) + uuid.slice(24);
};
const randomSpanId = () => {
	const uuid = randomUUID();
	return uuid.slice(19, 23) + uuid.slice(24);
};
/** Stable ids from stable names: the same input always gives the same span. */
const hashId = (text: string, hexChars: 16 | 32) => createHash("sha256").update(text).digest("hex").slice(0, hexChars);

/** Diagnostics: warnings once per key, debug lines only with LANGFUSE_DEBUG; everything redacted. */
class Logger {
	private readonly warned = new Set<string>();
	/** Set while a host UI is up: warnings become notifications instead of stderr under a TUI. */
	notify?: (line: string) => void;
	constructor(
		private readonly redact: Redactor,
		readonly debugEnabled: boolean,
		private readonly write: (line: string) => void = line => process.stderr.write(`${line}\n`),
	) {}

	warnOnce(key: string, message: string): void {
		if (this.warned.has(key)) return this.debug(message);
		this.warned.add(key);
		if (!this.notify) return this.out(message);
		try {
			this.notify(`langfuse: ${this.redact(message)}`);
		} catch {
			this.out(message);
		}
	}

	debug(message: string): void {
		if (this.debugEnabled) this.out(message);
	}

	private out(message: string): void {
		// a host value in a line (a 5 MB session id) is not echoed whole; cut between words, like oneLine
		if (message.length > 4000) message = `${message.slice(0, 4000).replace(/\s\S*$/, "")} …`;
		try {
			this.write(`${LOG_PREFIX} ${this.redact(message)}`);
		} catch {
			// stderr closed: nothing left to tell
		}
	}
}

// ════════════════════════════════════════════════════════════════════════════════════════════════
// §1 Config — environment variables only. LANGFUSE_* names win over the OPENCODE_LANGFUSE_* aliases.
// ════════════════════════════════════════════════════════════════════════════════════════════════

type Env = Record<string, string | undefined>;
type ExportMode = "full" | "metadata_only" | "off";
type TransportKind = "otel" | "ingestion" | "auto";
type Grouping = "prompt" | "session";

interface Config {
	/** False when keys are missing, LANGFUSE_ENABLED=false, or LANGFUSE_EXPORT_MODE=off. */
	enabled: boolean;
	/** Why tracing is off, for the one line we print. */
	disabledReason?: string;
	publicKey: string;
	secretKey: string;
	host: string;
	flushMs: number;
	maxQueue: number;
	sampleRate: number;
	tags: string[];
	debug: boolean;
	uiIndicator: boolean;
	environment?: string;
	release?: string;
	/** LANGFUSE_VERSION: the user's own app version, Langfuse's `version` field; unset = none sent. */
	version?: string;
	/** LANGFUSE_USER_ID, else the OS user name; undefined when neither names a user (never "unknown"). */
	userId?: string;
	grouping: Grouping;
	exportMode: ExportMode;
	redactPatterns: string[];
	maxFieldChars: number;
	spoolDir: string;
	maxSpoolBytes: number;
	retentionDays: number;
	transport: TransportKind;
	tracePrefix: string;
}

interface ConfigResult {
	config: Config;
	/** One human line per variable that was ignored, and why. */
	problems: string[];
}

/** A value as a config line shows it: quoted, one line, at most 60 characters (a pasted blob is not echoed). */
function shown(value: string): string {
	const flat = value.replace(/[\r\n\t]+/g, " ");
	return JSON.stringify(flat.length > 60 ? `${flat.slice(0, 60)}…` : flat);
}

/** Plain decimal numbers only: `0x10`, `1e3`, `12abc` and `Infinity` are typos, not numbers. */
const DECIMAL = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$/;

function readConfig(env: Env = process.env): ConfigResult {
	const problems: string[] = [];
	const pick = (...names: string[]): [string, string] | undefined => {
		for (const name of names) {
			const value = env[name]?.trim();
			if (value) return [name, value];
		}
		return undefined;
	};
	const text = (names: string[], fallback: string) => pick(...names)?.[1] ?? fallback;
	const number = (names: string[], fallback: number, min: number, max: number): number => {
		const found = pick(...names);
		if (!found) return fallback;
		const value = DECIMAL.test(found[1]) ? Number(found[1]) : Number.NaN;
		if (!Number.isFinite(value) || value < min || value > max) {
			problems.push(`${found[0]}=${shown(found[1])} is not a decimal number from ${min} to ${max}; using ${fallback}`);
			return fallback;
		}
		return value;
	};
	const flag = (names: string[], fallback: boolean): boolean => {
		const found = pick(...names);
		if (!found) return fallback;
		const value = found[1].toLowerCase();
		if (["1", "true", "yes", "on"].includes(value)) return true;
		if (["0", "false", "no", "off"].includes(value)) return false;
		problems.push(`${found[0]}=${shown(found[1])} is not true/false; using ${fallback}`);
		return fallback;
	};
	const oneOf = <T extends string>(names: string[], allowed: readonly T[], fallback: T): T => {
		const found = pick(...names);
		if (!found) return fallback;
		const value = found[1].toLowerCase() as T;
		if (allowed.includes(value)) return value;
		problems.push(`${found[0]}=${shown(found[1])} is not one of ${allowed.join("|")}; using ${fallback}`);
		return fallback;
	};

	const publicKey = text(["LANGFUSE_PUBLIC_KEY"], "");
	const secretKey = text(["LANGFUSE_SECRET_KEY"], "");
	const hostFound = pick("LANGFUSE_HOST", "LANGFUSE_BASE_URL", "LANGFUSE_BASEURL");
	let host = (hostFound?.[1] ?? "https://cloud.langfuse.com").replace(/\/+$/, "");
	/** A bad host turns tracing off: that one "tracing off" line names the variable, no second line. */
	let badHost: string | undefined;
	try {
		const url = new URL(host);
		if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error("not http(s)");
	} catch {
		badHost = `${hostFound?.[0] ?? "LANGFUSE_HOST"}=${shown(host)} is not an http(s) URL`;
		host = "";
	}

	const environmentFound = pick("LANGFUSE_ENVIRONMENT", "LANGFUSE_TRACING_ENVIRONMENT");
	let environment = environmentFound?.[1];
	if (environmentFound && environment !== undefined && (!/^[a-z0-9_-]{1,40}$/.test(environment) || environment.startsWith("langfuse"))) {
		problems.push(
			`${environmentFound[0]}=${shown(environment)} breaks Langfuse's rule (lowercase a-z 0-9 - _, at most 40, not starting with "langfuse"); using "default"`,
		);
		environment = undefined;
	}

	const spoolFound = pick("LANGFUSE_SPOOL_DIR", "OPENCODE_LANGFUSE_SPOOL_DIR");
	let spoolDir = spoolFound?.[1] ?? defaultSpoolDir(env);
	if (spoolFound && !path.isAbsolute(spoolDir)) {
		// relative to whatever folder the agent runs in: trace data would land in the user's project
		spoolDir = defaultSpoolDir(env);
		problems.push(`${spoolFound[0]}=${shown(spoolFound[1])} is not an absolute path; using ${spoolDir}`);
	}

	const redactFound = pick("LANGFUSE_REDACT_REGEX", "OPENCODE_LANGFUSE_REDACT_REGEX");
	const redactPatterns = splitPatterns(redactFound?.[1] ?? "").filter(pattern => {
		const refusal = unsafePattern(pattern);
		if (refusal) problems.push(`${redactFound![0]}: skipping pattern ${shown(pattern)}: ${refusal}`);
		return !refusal;
	});

	const flushSeconds = pick("OPENCODE_LANGFUSE_FLUSH_INTERVAL");
	const flushMs = pick("LANGFUSE_FLUSH_MS")
		? number(["LANGFUSE_FLUSH_MS"], 2000, 100, 600_000)
		: flushSeconds
			? number(["OPENCODE_LANGFUSE_FLUSH_INTERVAL"], 2000, 100, 600_000)
			: 2000;

	const exportMode = oneOf(["LANGFUSE_EXPORT_MODE", "OPENCODE_LANGFUSE_EXPORT_MODE"], ["full", "metadata_only", "off"] as const, "full");
	const explicitlyEnabled = flag(["LANGFUSE_ENABLED", "OPENCODE_LANGFUSE_ENABLED"], true);

	const config: Config = {
		enabled: true,
		publicKey,
		secretKey,
		host,
		flushMs,
		maxQueue: number(["LANGFUSE_MAX_QUEUE"], 500, 1, 100_000),
		sampleRate: number(["LANGFUSE_SAMPLE_RATE"], 1, 0, 1),
		tags: text(["LANGFUSE_TAGS"], "")
			.split(",")
			.map(tag => tag.trim())
			.filter(Boolean),
		debug: flag(["LANGFUSE_DEBUG", "OPENCODE_LANGFUSE_VERBOSE"], false),
		uiIndicator: flag(["LANGFUSE_UI_INDICATOR"], true),
		environment,
		release: pick("LANGFUSE_RELEASE")?.[1],
		version: pick("LANGFUSE_VERSION")?.[1],
		userId: pick("LANGFUSE_USER_ID")?.[1] ?? safeUserName(),
		grouping: oneOf(["LANGFUSE_TRACE_GROUPING"], ["prompt", "session"] as const, "prompt"),
		exportMode,
		redactPatterns,
		maxFieldChars: number(["LANGFUSE_MAX_FIELD_CHARS"], 64_000, 1_000, 1_000_000),
		spoolDir,
		maxSpoolBytes: number(["LANGFUSE_MAX_SPOOL_MB", "OPENCODE_LANGFUSE_MAX_SPOOL_MB"], 100, 0.01, 100_000) * 1024 * 1024,
		retentionDays: number(["LANGFUSE_RETENTION_DAYS", "OPENCODE_LANGFUSE_RETENTION_DAYS"], 7, 0.0001, 3650),
		transport: oneOf(["LANGFUSE_TRANSPORT"], ["otel", "ingestion", "auto"] as const, "otel"),
		// not trimmed: "oc: " keeps its space
		tracePrefix: env.LANGFUSE_TRACE_PREFIX || env.OPENCODE_LANGFUSE_TRACE_PREFIX || "",
	};

	const off = (reason: string) => {
		if (config.enabled) Object.assign(config, { enabled: false, disabledReason: reason });
	};
	if (!explicitlyEnabled) off("LANGFUSE_ENABLED is false");
	if (exportMode === "off") off("LANGFUSE_EXPORT_MODE is off");
	if (badHost) off(badHost);
	if (!publicKey || !secretKey) {
		const missing = [!publicKey && "LANGFUSE_PUBLIC_KEY", !secretKey && "LANGFUSE_SECRET_KEY"].filter(Boolean).join(" and ");
		off(`${missing} not set`);
	}
	return { config, problems };
}

/**
 * Why a LANGFUSE_REDACT_REGEX pattern must not run, or undefined when it may. The redactor runs it on
 * every string of every record (up to 64,000 characters each), so a pattern that backtracks
 * catastrophically would stall the agent: invalid syntax, a quantified group that itself holds an
 * unbounded quantifier (`(a+)+`, `(\w*x)*`), and any pattern slow on runs of the characters it names
 * are refused.
 */
function unsafePattern(pattern: string): string | undefined {
	const insensitive = pattern.startsWith("(?i)");
	const source = insensitive ? pattern.slice(4) : pattern;
	let re: RegExp;
	try {
		re = new RegExp(source, insensitive ? "gi" : "g");
	} catch (error) {
		return `invalid (${oneLine(errorText(error), 80)})`;
	}
	if (nestedQuantifier(source)) return "a repeated group holds a repeat (like (a+)+), which can take minutes on one line";
	// Probes: runs of each character the pattern names (and a few common ones), then a character
	// that matches nothing — the worst case of backtracking. Lengths grow so a bad pattern is caught
	// on a short probe, before it could block start-up for long.
	const letters = new Set<string>(["a", "A", "0", " ", "-", "_", "/", "="]);
	for (const char of source.replace(/\\./g, "")) if (char >= " " && char <= "~" && !"()[]{}|*+?^$.\\".includes(char)) letters.add(char);
	const budgetMs = 30;
	for (const char of [...letters].slice(0, 24)) {
		for (let length = 8; length <= 2048; length = length < 40 ? length + 2 : length * 2) {
			const probe = `${char.repeat(length)}\u0000`;
			const started = performance.now();
			re.lastIndex = 0;
			try {
				for (let m = re.exec(probe), n = 0; m && n < 10_000; m = re.exec(probe), n++) if (m[0].length === 0) re.lastIndex++;
			} catch {
				return "fails on a probe string";
			}
			if (performance.now() - started > budgetMs) return `too slow (over ${budgetMs} ms on ${length + 1} characters of ${JSON.stringify(char)})`;
		}
	}
	return undefined;
}

/** A quantified group (`(…)+`, `(…)*`, `(…){2,}`) whose body holds an unbounded quantifier. */
function nestedQuantifier(source: string): boolean {
	/** Per open group: does its body hold +, * or {n,}? */
	const groups: boolean[] = [];
	let inClass = false;
	for (let i = 0; i < source.length; i++) {
		const char = source[i];
		if (char === "\\") {
			i++;
			continue;
		}
		if (inClass) {
			if (char === "]") inClass = false;
			continue;
		}
		if (char === "[") inClass = true;
		else if (char === "(") groups.push(false);
		else if (char === ")") {
			const repeats = groups.pop() ?? false;
			const next = source.slice(i + 1);
			const quantified = /^(?:[+*]|\{\d+,\d*\})/.test(next);
			if (repeats && quantified) return true;
			// the group's own repeat makes any enclosing group's body repeating too
			if ((repeats || quantified) && groups.length) groups[groups.length - 1] = true;
		} else if ((char === "+" || char === "*" || (char === "{" && /^\{\d+,\}/.test(source.slice(i)))) && groups.length) {
			groups[groups.length - 1] = true;
		}
	}
	return false;
}

/** Comma-separated regex sources; a comma inside {m,n} stays with its pattern. */
function splitPatterns(value: string): string[] {
	return value
		.split(/,(?![^{]*\})/)
		.map(part => part.trim())
		.filter(Boolean);
}

/** The OS user's name, or undefined: a trace without a user beats one whose user is "unknown". */
function safeUserName(): string | undefined {
	const known = (name: string | undefined) => (name && name !== "unknown" ? name : undefined);
	const fromEnv = known(process.env.USER) ?? known(process.env.LOGNAME) ?? known(process.env.USERNAME);
	try {
		return known(os.userInfo().username) ?? fromEnv;
	} catch {
		return fromEnv;
	}
}

function defaultSpoolDir(env: Env): string {
	const cache = env.XDG_CACHE_HOME || path.join(env.HOME || os.homedir(), ".cache");
	return path.join(cache, "langfuse-ts", "spool");
}

/** `pk-lf-1234…abcd` — enough to recognise a key, never enough to use it. */
function maskKey(key: string): string {
	if (!key) return "(not set)";
	return key.length <= 12 ? `${key.slice(0, 3)}…` : `${key.slice(0, 8)}…${key.slice(-4)}`;
}

// ════════════════════════════════════════════════════════════════════════════════════════════════
// §2 Record — a host-neutral model: session → prompt (trace) → turn → LLM call | tool call | event.
//    Adapters translate host events into these calls; finished observations go to the sink.
// ════════════════════════════════════════════════════════════════════════════════════════════════

type ObservationType = "span" | "generation" | "event" | "agent" | "tool" | "chain";
type Level = "DEBUG" | "DEFAULT" | "WARNING" | "ERROR";
type Metadata = Record<string, unknown>;

interface TraceFields {
	name: string;
	input?: unknown;
	output?: unknown;
	tags: string[];
	metadata: Metadata;
}

/** One observation as Langfuse stores it. A record with `trace` also creates or updates its trace. */
interface ObservationRecord {
	traceId: string;
	id: string;
	parentId?: string;
	type: ObservationType;
	name: string;
	startMs: number;
	endMs: number;
	input?: unknown;
	output?: unknown;
	metadata?: Metadata;
	level?: Level;
	statusMessage?: string;
	model?: string;
	modelParameters?: Record<string, string | number | boolean>;
	usage?: Record<string, number>;
	cost?: Record<string, number>;
	completionStartMs?: number;
	sessionId: string;
	userId?: string;
	environment?: string;
	release?: string;
	/** The user's app version (LANGFUSE_VERSION), Langfuse's `version` field. */
	version?: string;
	/** Present on the trace's root (or a span that updates the trace): creates or updates the trace. */
	trace?: TraceFields;
	/** The trace's name and tags at emission, carried by EVERY span (as the official SDK's propagateAttributes). */
	traceName?: string;
	traceTags?: string[];
	/** Unique per emission and kept through spool replays: the ingestion event id. */
	emissionId: string;
	/** When this version was emitted; strictly increasing per process, so versions of a span never tie. */
	emittedMs?: number;
}

type RecordSink = (record: ObservationRecord) => void;

/** What a recorder knows about its session; set once by the adapter. */
interface SessionInfo {
	sessionId: string;
	host: string;
	hostVersion?: string;
	cwd?: string;
	/** Metadata on every trace of the session (model, parent session, …). */
	metadata: Metadata;
	tags: string[];
	userId?: string;
	environment?: string;
	release?: string;
	version?: string;
	grouping: Grouping;
	exportMode: ExportMode;
	tracePrefix: string;
	/** When the host's session began (its own record): the session root's start in every process. */
	startedMs?: number;
	/** The session's first prompt as the host recorded it: the session root's input in a later process. */
	firstPrompt?: string;
}

interface Draft extends Omit<ObservationRecord, "endMs" | "emissionId"> {
	endMs?: number;
}

interface StartOptions {
	name?: string;
	input?: unknown;
	metadata?: Metadata;
	/** Explicit ids make re-recording idempotent (Codex replays rollout files). */
	id?: string;
	/** The key of an open span or tool to hang under (a subagent's calls under its Agent tool), instead of the open turn. */
	parentKey?: string;
}

interface EndOptions {
	output?: unknown;
	metadata?: Metadata;
	level?: Level;
	statusMessage?: string;
}

interface GenerationStart extends StartOptions {
	model?: string;
	modelParameters?: Record<string, string | number | boolean>;
}

interface GenerationEnd extends EndOptions {
	/** The observation id, when it is known only at the end (omp/pi: from the assistant message's timestamp). */
	id?: string;
	model?: string;
	usage?: Record<string, number>;
	cost?: Record<string, number>;
	completionStartMs?: number;
}

// ── recorded transcripts: a host's OWN record of a session (Codex rollout, Claude Code transcript, session
//    files), parsed by pure functions into this shape; recordTranscript (§6) turns it into recorder calls.
//    One shape for every host, so the mapping to traces is written once.

/** OpenAI-style ChatML: the message shape Langfuse's chat view renders. */
interface ChatMessage {
	/** "system" | "user" | "assistant" | "tool" (a host's other roles pass through). */
	role: string;
	/** Text, or content parts (images → an omitted marker); null on an assistant message of only tool calls. */
	content: string | unknown[] | null;
	name?: string;
	tool_calls?: ChatToolCall[];
	/** On role "tool": the id of the call this answers. */
	tool_call_id?: string;
	/** Assistant thinking, where the host records it (a parser's shorthand; sent as `thinking`). */
	reasoning?: string;
	/** Assistant thinking as Langfuse's chat view reads it. */
	thinking?: { type: "thinking"; content: string }[];
}

interface ChatToolCall {
	id: string;
	type: "function";
	function: { name: string; arguments: string };
}

interface ToolDefinition {
	type: "function";
	function: { name: string; description?: string; parameters?: unknown };
}

/** Token counts, non-overlapping (Langfuse sums keys): input EXCLUDES cache read/write, output EXCLUDES reasoning. */
interface TokenCounts {
	input?: number;
	output?: number;
	cacheRead?: number;
	cacheWrite?: number;
	cacheWrite5m?: number;
	cacheWrite1h?: number;
	reasoning?: number;
	total?: number;
}

/** One user prompt and everything it caused. Ids are the HOST's ids: deterministic span ids derive from them. */
interface RecordedPrompt {
	/** Host id of the prompt (user message uuid, Codex turn id). */
	id: string;
	/** Host session id: the Langfuse session. */
	sessionId: string;
	startMs: number;
	endMs: number;
	/** The prompt as typed; "" when the record has none. */
	text: string;
	/** The final assistant text. */
	answer?: string;
	aborted?: boolean;
	/** The prompt failed: an ERROR on the trace. */
	error?: string;
	/** Did not finish normally (aborted, or the record ends mid-prompt): a WARNING with this message. */
	warning?: string;
	steps: RecordedStep[];
	/** Host-specific metadata, on the trace and the prompt's observation. */
	metadata?: Metadata;
	/** Known only at the end (durations, totals): on the prompt's observation, not on the trace. */
	endMetadata?: Metadata;
}

type RecordedStep = RecordedLlmCall | RecordedToolCall | RecordedCompaction | RecordedEvent;

interface RecordedLlmCall {
	kind: "llm";
	/** Host id of the response/message (dedupe key). */
	id: string;
	startMs: number;
	endMs: number;
	completionStartMs?: number;
	model?: string;
	provider?: string;
	parameters?: Record<string, string | number | boolean>;
	/** The messages the model received: the full history where the record has it (the Codex parser gives only what is new since the previous call, as Codex traces always had). */
	input: ChatMessage[];
	/** Tool definitions offered, when the record has them. */
	tools?: ToolDefinition[];
	/** Role "assistant": text, reasoning, tool_calls. */
	output: ChatMessage;
	usage?: TokenCounts;
	/** ONLY if the host records it per call; never zeros. */
	costUsd?: { input?: number; output?: number; cacheRead?: number; cacheWrite?: number; total: number };
	stopReason?: string;
	error?: string;
	metadata?: Metadata;
}

interface RecordedToolCall {
	kind: "tool";
	/** Host tool-call id (= the tool_calls[].id of the generation that asked). */
	id: string;
	name: string;
	startMs: number;
	/** Absent: the record has no result (still running when it ends); the prompt's end closes it, marked. */
	endMs?: number;
	input: unknown;
	output: unknown;
	isError: boolean;
	/** A failed command's exit code: the status message says it, unless `error` says more. */
	exitCode?: number;
	error?: string;
	/** A subagent run this tool started. */
	subagent?: { sessionId?: string; prompts: RecordedPrompt[] };
	metadata?: Metadata;
}

interface RecordedCompaction {
	kind: "compaction";
	id: string;
	/** startMs === endMs: the host recorded only that it happened (an event, not a span). */
	startMs: number;
	endMs: number;
	summary?: string;
	tokensBefore?: number;
}

interface RecordedEvent {
	kind: "event";
	id: string;
	at: number;
	name: string;
	level?: "WARNING" | "ERROR";
	message?: string;
	metadata?: Metadata;
}

/** Content part types that carry plain text, across the hosts' and providers' message formats. */
const TEXT_PARTS = new Set(["text", "input_text", "output_text", "Text"]);

/** Text parts joined; the plain text of a message or tool result. */
function textOf(content: unknown): string {
	if (typeof content === "string") return content;
	if (!Array.isArray(content)) return "";
	return content
		.filter(part => typeof part?.text === "string" && TEXT_PARTS.has(part.type))
		.map(part => part.text)
		.join("\n");
}

/** A content array of only text parts reads better in Langfuse as one string. */
function simplifyContent(content: unknown): unknown {
	if (Array.isArray(content) && content.length > 0 && content.every(part => part?.type === "text" && typeof part.text === "string")) {
		return textOf(content);
	}
	return content;
}

// ── Chat: one conversion of every host's messages into the ChatML Langfuse's chat view reads ──────
//
// A generation's input is `{messages, tools}`: OpenAI-style messages (`role`, `content`, assistant
// `tool_calls` [{id, type:"function", function:{name, arguments}}], tool results as `role:"tool"` with
// `tool_call_id`, reasoning as `thinking` [{type:"thinking", content}]) and the tool definitions offered
// ({type:"function", function:{name, description, parameters}}). Understood: OpenAI chat and Responses
// payloads, Anthropic messages (tool_use / tool_result / thinking), Google contents (functionCall /
// functionResponse), pi's own messages (toolCall parts, role toolResult), OpenCode messages
// ({info, parts} with tool parts) and ChatML as it is. Images become text markers.

/**
 * A generation's request as the host handed it over: references only (arrays copied, messages not),
 * so a hook does O(1) work. The exporter converts it, one message at a time, each message once
 * (prepareChat in §3); `toJSON` converts it whole for any path that did not.
 */
class ChatRequest {
	constructor(
		readonly messages: readonly unknown[],
		readonly tools?: readonly unknown[],
		readonly system?: unknown,
	) {}

	toJSON(): unknown {
		const tools = chatTools(this.tools);
		return { messages: [...chatSystem(this.system), ...this.messages.flatMap(chatMessagesOf)], ...(tools.length ? { tools } : {}) };
	}
}

/** A provider request body (OpenAI chat / Responses, Anthropic, Google) as a ChatRequest. */
function chatRequest(payload: ProviderRequest & { systemInstruction?: unknown; config?: { systemInstruction?: unknown; tools?: unknown } }): ChatRequest | unknown {
	const tools = Array.isArray(payload.tools) ? payload.tools : Array.isArray(payload.config?.tools) ? payload.config.tools : undefined;
	const copy = (list: unknown[]) => [...list];
	if (Array.isArray(payload.messages)) return new ChatRequest(copy(payload.messages), tools, payload.system);
	if (Array.isArray(payload.input)) return new ChatRequest(copy(payload.input), tools, payload.instructions);
	if (typeof payload.input === "string") return new ChatRequest([{ role: "user", content: payload.input }], tools, payload.instructions);
	if (Array.isArray(payload.contents)) return new ChatRequest(copy(payload.contents), tools, payload.systemInstruction ?? payload.config?.systemInstruction);
	return payload;
}

const isObject = (value: unknown): value is Record<string, any> => value !== null && typeof value === "object" && !Array.isArray(value);

/** A system prompt in any host's shape (string, text parts, Google `{parts}`, OpenCode's string list). */
function chatSystem(system: unknown): ChatMessage[] {
	if (system === undefined || system === null) return [];
	const text =
		typeof system === "string"
			? system
			: Array.isArray(system)
				? system.map(part => (typeof part === "string" ? part : typeof part?.text === "string" ? part.text : "")).filter(Boolean).join("\n")
				: isObject(system) && Array.isArray(system.parts)
					? system.parts.map((part: any) => (typeof part?.text === "string" ? part.text : "")).join("\n")
					: "";
	return text ? [{ role: "system", content: text }] : [];
}

const argumentsText = (value: unknown) => (typeof value === "string" ? value : JSON.stringify(value ?? {}) ?? "{}");

function chatToolCall(id: unknown, name: unknown, args: unknown): ChatToolCall {
	const callName = stringOr(name) ?? "tool";
	return { id: stringOr(id) ?? callName, type: "function", function: { name: callName, arguments: argumentsText(args) } };
}

/** An image part's marker; the image itself is never sent. */
function imageText(part: Record<string, any>): string {
	const data: string = part.data ?? part.url ?? part.source?.data ?? part.inlineData?.data ?? (typeof part.image_url === "string" ? part.image_url : part.image_url?.url) ?? part.image ?? "";
	const mediaType = part.mimeType ?? part.mediaType ?? part.mime ?? part.source?.media_type ?? part.inlineData?.mimeType ?? (typeof data === "string" ? data.match(/^data:([^;]+)/)?.[1] : undefined) ?? "image";
	return typeof data === "string" && data.length > 0 && !/^https?:/.test(data) ? imageMarker(mediaType, data.length) : `[image ${typeof data === "string" && data ? data : mediaType}]`;
}

const IMAGE_PARTS = new Set(["image", "input_image", "image_url", "file"]);

/** A content value as ChatML content: a string when it is only text, else text parts (images as markers). */
function chatContent(content: unknown): string | unknown[] | null {
	if (content === undefined || content === null) return null;
	if (typeof content === "string") return content;
	if (!Array.isArray(content)) return isObject(content) ? JSON.stringify(content) : String(content);
	const parts: { type: "text"; text: string }[] = [];
	for (const part of content) {
		if (typeof part === "string") parts.push({ type: "text", text: part });
		else if (typeof part?.text === "string" && (TEXT_PARTS.has(part.type) || part.type === undefined)) parts.push({ type: "text", text: part.text });
		else if (isObject(part) && (IMAGE_PARTS.has(part.type) || part.inlineData)) parts.push({ type: "text", text: part.type === "file" && !String(part.mime ?? "").startsWith("image/") ? `[file ${part.filename ?? part.mime ?? ""}]` : imageText(part) });
	}
	return parts.map(part => part.text).join("\n");
}

/** A tool result's content as the text the model read. */
function toolResultText(content: unknown): string {
	if (typeof content === "string") return content;
	if (Array.isArray(content)) return String(chatContent(content) ?? "");
	if (content === undefined || content === null) return "";
	return JSON.stringify(content) ?? "";
}

/** One host message → its ChatML message(s) (a message carrying several tool results becomes several). */
function chatMessagesOf(raw: unknown): ChatMessage[] {
	if (typeof raw === "string") return [{ role: "user", content: raw }];
	if (!isObject(raw)) return [];
	const message = raw;
	// OpenCode: {info: {role}, parts: [text | reasoning | tool | file …]}
	if (isObject(message.info) && Array.isArray(message.parts)) return chatFromParts(String(message.info.role ?? "user"), message.parts);
	// Google: {role: "user" | "model" | "function", parts: [{text} | {functionCall} | {functionResponse} …]}
	if (Array.isArray(message.parts)) return chatFromGoogle(message);
	switch (message.type) {
		case "function_call":
		case "custom_tool_call":
		case "local_shell_call":
		case "tool_search_call":
		case "tool_call":
			return [{ role: "assistant", content: null, tool_calls: [chatToolCall(message.call_id ?? message.id, message.name ?? String(message.type).replace(/_call$/, ""), message.arguments ?? message.input ?? message.action)] }];
		case "function_call_output":
		case "custom_tool_call_output":
		case "local_shell_call_output":
		case "tool_search_output": {
			const output = isObject(message.output) && "content" in message.output ? message.output.content : message.output;
			return [{ role: "tool", tool_call_id: String(message.call_id ?? ""), content: toolResultText(output) }];
		}
		case "reasoning": {
			const text = [...(Array.isArray(message.summary) ? message.summary : []), ...(Array.isArray(message.content) ? message.content : [])]
				.map((part: any) => (typeof part === "string" ? part : part?.text))
				.filter(Boolean)
				.join("\n");
			return text ? [{ role: "assistant", content: "", thinking: [{ type: "thinking", content: text }] }] : [];
		}
	}
	const role = stringOr(message.role) ?? "user";
	// pi's own tool result; ChatML's
	if (role === "toolResult" || role === "tool") {
		return [{ role: "tool", tool_call_id: String(message.toolCallId ?? message.tool_call_id ?? ""), content: toolResultText(message.content) }];
	}
	const messages = chatFromContent(role, message.content, message.tool_calls, message.name);
	// ChatML from a parser (Codex, Claude Code) may carry reasoning as one string
	if (typeof message.reasoning === "string" && message.reasoning && messages.length) {
		const last = messages[messages.length - 1]!;
		last.thinking = [...(last.thinking ?? []), { type: "thinking", content: message.reasoning }];
		if (last.content === "") last.content = null;
	}
	return messages;
}

/** A role and its content array: text stays content, reasoning goes to thinking, calls to tool_calls, results to tool messages. */
function chatFromContent(role: string, content: unknown, toolCalls?: unknown, name?: unknown): ChatMessage[] {
	const chatRole = role === "model" ? "assistant" : role === "developer" ? "system" : role;
	const calls: ChatToolCall[] = [];
	const results: ChatMessage[] = [];
	const thinking: { type: "thinking"; content: string }[] = [];
	const kept: unknown[] = [];
	if (Array.isArray(toolCalls)) {
		for (const call of toolCalls) if (isObject(call)) calls.push(chatToolCall(call.id, call.function?.name ?? call.name, call.function?.arguments ?? call.arguments));
	}
	if (Array.isArray(content)) {
		for (const part of content) {
			if (!isObject(part)) {
				kept.push(part);
				continue;
			}
			switch (part.type) {
				case "toolCall": // pi
				case "tool_use": // Anthropic
				case "tool_call":
				case "function_call":
					calls.push(chatToolCall(part.id ?? part.call_id, part.name, part.arguments ?? part.input));
					break;
				case "tool_result": // Anthropic
					results.push({ role: "tool", tool_call_id: String(part.tool_use_id ?? ""), content: toolResultText(part.content) });
					break;
				case "thinking":
				case "reasoning":
				case "redacted_thinking": {
					const text = part.thinking ?? part.text ?? part.reasoning;
					if (typeof text === "string" && text) thinking.push({ type: "thinking", content: text });
					break;
				}
				default:
					kept.push(part);
			}
		}
	}
	const text = Array.isArray(content) ? chatContent(kept) : chatContent(content);
	const messages: ChatMessage[] = [...results];
	if (text || calls.length || thinking.length || !results.length) {
		const message: ChatMessage = { role: chatRole, content: text || (calls.length || thinking.length ? null : "") };
		if (typeof name === "string" && name) message.name = name;
		if (calls.length) message.tool_calls = calls;
		if (thinking.length) message.thinking = thinking;
		messages.push(message);
	}
	return messages;
}

/** OpenCode's parts: an assistant message's tool parts are its calls and, once done, their results. */
function chatFromParts(role: string, parts: unknown[]): ChatMessage[] {
	const content: unknown[] = [];
	const results: ChatMessage[] = [];
	for (const part of parts) {
		if (!isObject(part)) continue;
		if (part.type === "tool") {
			const state = isObject(part.state) ? part.state : {};
			content.push({ type: "tool_call", id: part.callID, name: part.tool, arguments: state.input });
			if (state.status === "completed" || state.status === "error") {
				results.push({ role: "tool", tool_call_id: String(part.callID ?? ""), content: toolResultText(state.status === "error" ? state.error : state.output) });
			}
		} else if (part.type === "text" || part.type === "reasoning" || part.type === "file") content.push(part);
	}
	return [...chatFromContent(role, content), ...results];
}

function chatFromGoogle(message: Record<string, any>): ChatMessage[] {
	const role = message.role === "model" ? "assistant" : message.role === "function" ? "tool" : String(message.role ?? "user");
	const content: unknown[] = [];
	const results: ChatMessage[] = [];
	for (const part of message.parts) {
		if (!isObject(part)) continue;
		if (isObject(part.functionCall)) content.push({ type: "tool_call", id: part.functionCall.id ?? part.functionCall.name, name: part.functionCall.name, arguments: part.functionCall.args });
		else if (isObject(part.functionResponse)) {
			const response = part.functionResponse;
			results.push({ role: "tool", tool_call_id: String(response.id ?? response.name ?? ""), content: toolResultText(response.response?.output ?? response.response) });
		} else if (typeof part.text === "string") content.push({ type: part.thought ? "thinking" : "text", text: part.text });
		else if (part.inlineData) content.push(part);
	}
	if (role === "tool") return results;
	return [...results, ...chatFromContent(role, content)];
}

/** Tool definitions in any provider's shape, as `{type:"function", function:{name, description, parameters}}`. */
function chatTools(tools: readonly unknown[] | undefined): ToolDefinition[] {
	const out: ToolDefinition[] = [];
	const add = (name: unknown, description: unknown, parameters: unknown) => {
		const toolName = stringOr(name);
		if (!toolName) return;
		const fn: ToolDefinition["function"] = { name: toolName };
		if (typeof description === "string") fn.description = description;
		if (isObject(parameters)) fn.parameters = parameters;
		out.push({ type: "function", function: fn });
	};
	for (const tool of tools ?? []) {
		if (!isObject(tool)) continue;
		if (Array.isArray(tool.functionDeclarations)) {
			for (const declaration of tool.functionDeclarations) if (isObject(declaration)) add(declaration.name, declaration.description, declaration.parameters ?? declaration.parametersJsonSchema);
		} else if (isObject(tool.function)) add(tool.function.name, tool.function.description, tool.function.parameters);
		else add(tool.name ?? tool.type, tool.description, tool.parameters ?? tool.input_schema ?? tool.inputSchema ?? tool.jsonSchema);
	}
	return out;
}

/**
 * The assistant's answer: plain text when it is only text, else one assistant message with its
 * text, reasoning (`thinking`) and `tool_calls`. `content` is any host's assistant content.
 */
function chatOutput(content: unknown, toolCalls?: unknown): unknown {
	if (content === undefined && toolCalls === undefined) return undefined;
	const [message] = chatFromContent("assistant", content, toolCalls);
	if (!message) return undefined;
	if (!message.tool_calls && !message.thinking) return message.content ?? undefined;
	return message;
}

// ── Values entering the record: whatever an adapter passes, what leaves is valid for Langfuse ──

/** Times Langfuse and OTLP can hold: from 1970 to 2100 (int64 nanoseconds end in 2262). */
const MAX_TIME_MS = 4_102_444_800_000;
const validTime = (value: unknown): value is number => typeof value === "number" && value >= 0 && value <= MAX_TIME_MS;
/** Langfuse: trace and observation names up to 1,000 characters; session ids under 200 US-ASCII characters. */
const MAX_NAME_CHARS = 1_000;
const MAX_SESSION_ID_CHARS = 199;
const SPAN_ID = /^[0-9a-f]{16}$/;
const TRACE_ID = /^[0-9a-f]{32}$/;
const LEVELS: readonly Level[] = ["DEBUG", "DEFAULT", "WARNING", "ERROR"];

/** A session id Langfuse accepts: US-ASCII, under 200 characters; a longer one keeps its head and a hash of the whole. */
function recordSessionId(value: unknown): string {
	const text = typeof value === "string" && value ? value : "unknown";
	if (text.length <= MAX_SESSION_ID_CHARS && /^[\x20-\x7e]+$/.test(text)) return text;
	return `${text.slice(0, 150).replace(/[^\x20-\x7e]/g, "_")}~${hashId(text, 16)}`;
}

/** Numeric maps (usage, cost): finite numbers under string keys only, so encoding cannot throw. */
function numberMap(value: unknown): Record<string, number> | undefined {
	if (value === null || typeof value !== "object") return undefined;
	const out: Record<string, number> = {};
	let keys = 0;
	let numbers = 0;
	// for…in, not Object.entries: called for every record's usage and costs, it allocates only what it returns
	for (const key in value) {
		if (!Object.hasOwn(value, key)) continue;
		if (++keys > 50) break;
		const item = (value as Record<string, unknown>)[key];
		if (typeof item === "number" && Number.isFinite(item)) {
			out[key.slice(0, 100)] = item;
			numbers++;
		}
	}
	return numbers ? out : undefined;
}

/**
 * One session's observations. Prompts are traces (or, grouped by session, chain spans under one
 * session trace); turns are spans in the prompt; LLM and tool calls hang under the open turn.
 * Every method is O(1) bookkeeping: no I/O, no copying of payloads.
 */
class SessionRecorder {
	private readonly drafts = new Map<string, Draft>();
	private prompt?: Draft;
	private sessionRoot?: Draft;
	private turn?: Draft;
	private promptCount = 0;
	private goalName?: string;
	private lastOutput?: string;
	private previousTraceId?: string;
	/** The last ended prompt's root: a rename with includeLast still reaches its trace. */
	private previousRoot?: Draft;
	private lastTurnId?: string;
	/**
	 * The latest version of each span sent for the last two traces (up to SENT_KEPT_WEIGHT each): a rename
	 * re-sends them, so every stored row carries the final trace name (v4 filters read each row's own).
	 */
	private readonly sent = new Map<string, { spans: Map<string, ObservationRecord>; weight: number }>();
	/** info.sessionId as Langfuse takes it (the adapter keeps the host's own id in info). */
	private readonly sessionId: string;
	/** What was fixed on entry, reported once per kind. */
	private readonly fixed = new Set<string>();

	constructor(
		private readonly sink: RecordSink,
		readonly info: SessionInfo,
		/** One debug line per kind of bad value this session's adapter passed. */
		private readonly report: (line: string) => void = () => {},
	) {
		this.sessionId = recordSessionId(info.sessionId);
		if (this.sessionId !== info.sessionId) this.fix("session id", `${typeof info.sessionId === "string" ? `${info.sessionId.length} characters` : typeof info.sessionId}; sent as ${this.sessionId.slice(0, 40)}…`);
	}

	get traceId(): string | undefined {
		return this.prompt?.traceId;
	}

	/** The trace of the open prompt, else of the last one: what /langfuse links to. */
	get lastTraceId(): string | undefined {
		return this.prompt?.traceId ?? this.previousTraceId;
	}

	get promptOpen(): boolean {
		return this.prompt !== undefined;
	}

	startPrompt(at: number, options: StartOptions & { traceId?: string } = {}): void {
		if (this.prompt) this.endPrompt(at);
		this.promptCount++;
		const text = typeof options.input === "string" ? options.input : undefined;
		const name = this.name(this.traceName(text), `${this.info.host} prompt ${this.promptCount}`);
		const traceFields: TraceFields = {
			name,
			input: options.input,
			tags: this.info.tags,
			metadata: { ...this.info.metadata, ...(options.metadata !== null && typeof options.metadata === "object" ? options.metadata : {}) },
		};
		if (this.info.grouping === "session") {
			if (!this.sessionRoot) {
				// One span across processes: its start and input come from the session, not this process.
				const startedMs = Math.min(at, this.info.startedMs ?? at);
				const input = this.info.firstPrompt ?? options.input;
				const rootName = this.info.firstPrompt !== undefined ? this.traceName(this.info.firstPrompt) : name;
				this.sessionRoot = this.draft("agent", rootName, startedMs, {
					traceId: hashId(`session:${this.info.sessionId}`, 32),
					id: hashId(`session-root:${this.info.sessionId}`, 16),
					input,
					trace: { ...traceFields, name: rootName, input },
				});
				this.emitSnapshot(this.sessionRoot, at);
			}
			this.prompt = this.draft("chain", name, at, {
				traceId: this.sessionRoot.traceId,
				parentId: this.sessionRoot.id,
				id: options.id,
				input: options.input,
				metadata: options.metadata,
			});
		} else {
			this.prompt = this.draft("agent", name, at, {
				traceId: options.traceId ?? randomTraceId(),
				id: options.id,
				input: options.input,
				trace: traceFields,
			});
			// Sent now so a trace has its name and input even if the process dies mid-prompt.
			this.emitSnapshot(this.prompt, at);
		}
	}

	/** Ends the prompt (and anything still open in it); the trace gets the final answer as output. */
	endPrompt(at: number, options: EndOptions = {}): void {
		const prompt = this.prompt;
		if (!prompt) return;
		this.closeChildren(at);
		const output = options.output ?? this.lastOutput;
		if (prompt.trace) prompt.trace.output = output;
		this.finish(prompt, at, { ...options, output });
		this.previousTraceId = prompt.traceId;
		if (prompt.trace) this.previousRoot = prompt;
		this.prompt = undefined;
		this.lastOutput = undefined;
		if (this.sessionRoot) {
			this.sessionRoot.output = output;
			if (this.sessionRoot.trace) this.sessionRoot.trace.output = output;
			this.emitSnapshot(this.sessionRoot, at);
		}
	}

	/** The latest assistant text: the prompt's output if the prompt ends without one. */
	noteOutput(text: string | undefined): void {
		if (text) this.lastOutput = text;
	}

	/**
	 * With `adoptOpenCalls`, calls still open between turns, or under the previous turn, move into this
	 * one, which then starts when they did — for hosts that announce a turn's LLM request before the turn.
	 */
	startTurn(at: number, options: StartOptions & { adoptOpenCalls?: boolean } = {}): void {
		this.ensurePrompt(at);
		if (this.turn) this.endTurn(at);
		const previousTurnId = this.lastTurnId;
		const turn = (this.turn = this.draft("span", options.name ?? "turn", at, this.childOf(this.prompt!, options)));
		this.lastTurnId = turn.id;
		if (!options.adoptOpenCalls) return;
		for (const draft of this.drafts.values()) {
			if ((previousTurnId && draft.parentId === previousTurnId) || draft.parentId === this.prompt!.id) {
				draft.parentId = turn.id;
				turn.startMs = Math.min(turn.startMs, draft.startMs);
			}
		}
	}

	endTurn(at: number, options: EndOptions = {}): void {
		if (!this.turn) return;
		this.finish(this.turn, at, options);
		this.turn = undefined;
	}

	startGeneration(key: string, at: number, options: GenerationStart = {}): void {
		this.ensurePrompt(at);
		const draft = this.draft("generation", options.name ?? options.model ?? "llm", at, this.childOf(this.openParent(options), options));
		draft.model = options.model;
		draft.modelParameters = options.modelParameters;
		this.replaceDraft(key, draft, at);
	}

	/** First streamed token: called per delta, so it must stay O(1). */
	markFirstToken(key: string, at: number): void {
		const draft = this.drafts.get(key);
		if (draft && draft.completionStartMs === undefined && validTime(at)) draft.completionStartMs = at;
	}

	hasDraft(key: string): boolean {
		return this.drafts.has(key);
	}

	endGeneration(key: string, at: number, options: GenerationEnd = {}): void {
		let draft = this.drafts.get(key);
		if (!draft) {
			this.startGeneration(key, at, { model: options.model });
			draft = this.drafts.get(key)!;
		}
		draft.id = options.id ?? draft.id;
		draft.model = options.model ?? draft.model;
		draft.usage = numberMap(options.usage);
		draft.cost = numberMap(options.cost);
		if (options.completionStartMs !== undefined) {
			if (validTime(options.completionStartMs)) draft.completionStartMs ??= options.completionStartMs;
			else this.fix("time", `completion start ${String(options.completionStartMs)} left out`);
		}
		this.drafts.delete(key);
		this.finish(draft, at, options);
	}

	startTool(key: string, at: number, options: StartOptions & { name: string }): void {
		if (this.drafts.has(key)) return; // hosts announce a tool twice (tool_call and tool_execution_start)
		this.ensurePrompt(at);
		this.drafts.set(key, this.draft("tool", options.name, at, this.childOf(this.openParent(options), options)));
	}

	endTool(key: string, at: number, options: EndOptions & { name?: string } = {}): void {
		if (!this.drafts.has(key)) this.startTool(key, at, { name: typeof options.name === "string" && options.name ? options.name : "tool" });
		const draft = this.drafts.get(key)!;
		this.drafts.delete(key);
		this.finish(draft, at, options);
	}

	/** A span the adapter opens and closes by key (compaction, subagent runs, …). */
	startSpan(key: string, at: number, options: StartOptions & { name: string; type?: ObservationType }): void {
		this.ensurePrompt(at);
		this.replaceDraft(key, this.draft(options.type ?? "span", options.name, at, this.childOf(this.openParent(options), options)), at);
	}

	endSpan(key: string, at: number, options: EndOptions = {}): void {
		const draft = this.drafts.get(key);
		if (!draft) return;
		this.drafts.delete(key);
		this.finish(draft, at, options);
	}

	/** A point in time (retry, reminder, …) under the open turn or prompt. */
	event(at: number, options: StartOptions & { name: string; level?: Level; statusMessage?: string }): void {
		this.ensurePrompt(at);
		const draft = this.draft("event", options.name, at, this.childOf(this.openParent(options), options));
		this.finish(draft, at, { level: options.level, statusMessage: options.statusMessage });
	}

	/**
	 * The current and every later trace take this name (omp's goal_updated); with includeLast, and no
	 * prompt open, so does the trace of the prompt that just ended (OpenCode's title arriving late).
	 */
	rename(name: string | undefined, options: { includeLast?: boolean } = {}): void {
		this.goalName = typeof name === "string" && name.trim() ? this.name(this.info.tracePrefix + oneLine(name, 200), "renamed") : undefined;
		if (!this.goalName) return;
		const last = options.includeLast && !this.prompt ? this.previousRoot : undefined;
		for (const root of new Set([this.prompt?.trace ? this.prompt : undefined, this.sessionRoot, last])) {
			if (!root?.trace || root.trace.name === this.goalName) continue;
			root.name = root.trace.name = this.goalName;
			this.emitSnapshot(root, root.endMs ?? Date.now());
			this.resendRenamed(root);
		}
	}

	/**
	 * After a rename: every span already sent in the trace again, now with the new trace name (Langfuse
	 * v4 replaces a row whole, and filters by each row's own trace name), then a small event that starts
	 * after all of them — Langfuse v3 merges a trace's updates by the start time of the span carrying
	 * them, so this one wins whatever order its stored files are read in.
	 */
	private resendRenamed(root: Draft): void {
		const sent = this.sent.get(root.traceId);
		let latestStart = root.startMs;
		for (const record of sent?.spans.values() ?? []) {
			latestStart = Math.max(latestStart, record.startMs);
			if (record.id !== root.id) this.send({ ...record, traceName: root.trace!.name, emissionId: randomUUID() });
		}
		const at = Math.max(Date.now(), latestStart + 1);
		this.emit(this.draft("event", "trace renamed", at, { traceId: root.traceId, parentId: root.id, metadata: { name: root.trace!.name } }));
	}

	/** A subagent's own session, sent to the same sink: its traces are tagged and carry the link to the parent. */
	subagent(sessionId: string, link: Metadata): SessionRecorder {
		const metadata = { host: this.info.host, hostVersion: this.info.hostVersion, cwd: this.info.cwd, ...link };
		// its own session: not the parent's start time or first prompt
		return new SessionRecorder(this.sink, { ...this.info, sessionId, metadata, tags: [...new Set([...this.info.tags, "subagent"])], startedMs: undefined, firstPrompt: undefined });
	}

	/** Ends everything still open: the session is over (shutdown, dispose, end of a rollout). */
	close(at: number, options: EndOptions = {}): void {
		if (this.prompt) this.endPrompt(at, options);
		for (const key of [...this.drafts.keys()]) this.finishKey(key, at, { level: "WARNING", statusMessage: "still running when the session ended" });
	}

	private traceName(promptText: string | undefined): string {
		if (this.goalName) return this.goalName;
		const label =
			this.info.exportMode === "full" && promptText?.trim() ? oneLine(promptText, 80) : `${this.info.host} prompt ${this.promptCount}`;
		return this.info.tracePrefix + label;
	}

	private ensurePrompt(at: number): void {
		if (!this.prompt) this.startPrompt(at);
	}

	private openParent(options: StartOptions): Draft {
		return (options.parentKey !== undefined ? this.drafts.get(options.parentKey) : undefined) ?? this.turn ?? this.prompt!;
	}

	private childOf(parent: Draft, options: StartOptions): Partial<Draft> {
		return { traceId: parent.traceId, parentId: parent.id, id: options.id, input: options.input, metadata: options.metadata };
	}

	/** Every observation starts here: name, ids and start time are checked (and fixed, one debug line per kind). */
	private draft(type: ObservationType, name: unknown, at: unknown, fields: Partial<Draft>): Draft {
		return {
			...fields,
			type,
			name: this.name(name, type === "generation" ? "llm" : type),
			startMs: this.time(at, Date.now(), "start"),
			traceId: this.id(fields.traceId, TRACE_ID, 32) ?? randomTraceId(),
			id: this.id(fields.id, SPAN_ID, 16) ?? randomSpanId(),
			model: typeof fields.model === "string" ? fields.model : undefined,
			sessionId: this.sessionId,
			userId: this.info.userId,
			environment: this.info.environment,
			release: this.info.release,
			version: this.info.version,
		};
	}

	private replaceDraft(key: string, draft: Draft, at: number): void {
		if (this.drafts.has(key)) this.finishKey(key, at, { level: "WARNING", statusMessage: "superseded before it ended" });
		this.drafts.set(key, draft);
	}

	private closeChildren(at: number): void {
		this.endTurn(at);
		for (const key of [...this.drafts.keys()]) {
			if (this.drafts.get(key)?.traceId === this.prompt?.traceId) this.finishKey(key, at, { level: "WARNING", statusMessage: "still running when the prompt ended" });
		}
	}

	private finishKey(key: string, at: number, options: EndOptions): void {
		const draft = this.drafts.get(key);
		this.drafts.delete(key);
		if (draft) this.finish(draft, at, options);
	}

	/** Every observation ends here: end time, level, status message, name and model are checked. */
	private finish(draft: Draft, at: unknown, options: EndOptions & { name?: unknown }): void {
		if (options.output !== undefined) draft.output = options.output;
		if (options.metadata !== null && typeof options.metadata === "object") draft.metadata = { ...draft.metadata, ...options.metadata };
		if (options.level && LEVELS.includes(options.level)) draft.level = options.level;
		if (options.statusMessage) draft.statusMessage = typeof options.statusMessage === "string" ? oneLine(options.statusMessage, MAX_NAME_CHARS) : this.name(options.statusMessage, "error");
		if (typeof draft.model !== "string") draft.model = undefined;
		draft.endMs = Math.max(this.time(at, draft.startMs, "end"), draft.startMs);
		this.emit(draft);
	}

	private emitSnapshot(draft: Draft, at: number): void {
		this.emit({ ...draft, endMs: Math.max(this.time(at, draft.startMs, "end"), draft.startMs), trace: draft.trace && { ...draft.trace } });
	}

	/** A time within 1970–2100, else `fallback` (now for a start, the start for an end). */
	private time(at: unknown, fallback: number, what: string): number {
		if (validTime(at)) return at;
		this.fix("time", `${what} time ${String(at).slice(0, 30)} replaced`);
		return fallback;
	}

	/** A non-empty string of at most 1,000 characters (cut between words), else `fallback`. */
	private name(value: unknown, fallback: string): string {
		if (typeof value === "string" && value) {
			if (value.length <= MAX_NAME_CHARS) return value;
			this.fix("name", `a name of ${value.length} characters shortened`);
			return oneLine(value, MAX_NAME_CHARS) || fallback;
		}
		this.fix("name", `a ${value === null ? "null" : typeof value} name replaced by "${fallback}"`);
		return fallback;
	}

	/** An explicit id in the OTLP shape; another string maps to its hash (stable), anything else to none. */
	private id(value: unknown, shape: RegExp, hexChars: 16 | 32): string | undefined {
		if (value === undefined || (typeof value === "string" && shape.test(value))) return value;
		this.fix("id", `an id that is not ${hexChars} hex characters (${typeof value}) replaced`);
		return typeof value === "string" ? hashId(value, hexChars) : undefined;
	}

	private fix(kind: string, detail: string): void {
		if (this.fixed.has(kind)) return;
		this.fixed.add(kind);
		try {
			this.report(`session ${this.sessionId.slice(0, 60)}: fixed a bad value from the host (${kind}): ${detail}; later ones of this kind are fixed silently`);
		} catch {
			// a reporter must never break recording
		}
	}

	private emit(draft: Draft): void {
		const trace = this.traceOf(draft.traceId);
		this.send({
			...draft,
			endMs: draft.endMs ?? draft.startMs,
			traceName: trace?.name ?? draft.trace?.name,
			traceTags: trace?.tags ?? this.info.tags,
			emissionId: randomUUID(),
		});
	}

	/** The trace fields of the trace a span belongs to: its prompt's, the session's or the last prompt's. */
	private traceOf(traceId: string): TraceFields | undefined {
		for (const root of [this.prompt, this.sessionRoot, this.previousRoot]) if (root?.trace && root.traceId === traceId) return root.trace;
		return undefined;
	}

	private send(record: ObservationRecord): void {
		record.emittedMs = nextEmitMs();
		let sent = this.sent.get(record.traceId);
		if (!sent) {
			this.sent.set(record.traceId, (sent = { spans: new Map(), weight: 0 }));
			for (const traceId of this.sent.keys()) if (this.sent.size > 2) this.sent.delete(traceId);
		}
		// a generation holds its request's messages: it weighs as many, so what is kept stays bounded
		const weight = 1 + (record.input instanceof ChatRequest ? record.input.messages.length : 0);
		if (sent.spans.has(record.id) || sent.weight + weight <= SENT_KEPT_WEIGHT) {
			if (!sent.spans.has(record.id)) sent.weight += weight;
			sent.spans.set(record.id, record);
		}
		this.sink(record);
	}
}

/**
 * What a recorder keeps per trace for a rename to re-send: spans, each counting 1 plus the messages
 * of its request (the rest keep the name they were sent with).
 */
const SENT_KEPT_WEIGHT = 20_000;
let lastEmitMs = 0;
/** Now, but strictly after the previous emission: two versions of one span never share a timestamp. */
function nextEmitMs(): number {
	lastEmitMs = Math.max(Date.now(), lastEmitMs + 1);
	return lastEmitMs;
}

/**
 * Token counts in the keys Langfuse's shipped price list prices (worker/src/constants/
 * default-model-prices.json: input, input_cache_read, input_cache_creation[_5m|_1h], output,
 * output_reasoning, total). Langfuse sums keys containing "input" / "output" into its totals: cache
 * writes with a TTL split go under the per-TTL keys (the 1-hour rate is higher), and only the part the
 * split does not cover under the plain key, so no write is counted twice.
 */
function usageDetails(counts: { [key in keyof TokenCounts]?: unknown }): Record<string, number> | undefined {
	const details: Record<string, number> = {};
	const put = (key: string, value: unknown) => {
		if (typeof value === "number" && Number.isFinite(value) && value > 0) details[key] = Math.round(value);
	};
	const byTtl = [counts.cacheWrite5m, counts.cacheWrite1h].reduce<number>((sum, value) => sum + (finite(value) ?? 0), 0);
	put("input", counts.input);
	put("input_cache_read", counts.cacheRead);
	put("input_cache_creation", (finite(counts.cacheWrite) ?? 0) - byTtl);
	put("input_cache_creation_5m", counts.cacheWrite5m);
	put("input_cache_creation_1h", counts.cacheWrite1h);
	put("output", counts.output);
	put("output_reasoning", counts.reasoning);
	put("total", counts.total);
	return Object.keys(details).length ? details : undefined;
}

/** Dollar costs in the same keys, so Langfuse shows the host's own prices instead of guessing. */
function costDetails(costs: { input?: unknown; output?: unknown; cacheRead?: unknown; cacheWrite?: unknown; total?: unknown }) {
	const details: Record<string, number> = {};
	const put = (key: string, value: unknown) => {
		if (typeof value === "number" && Number.isFinite(value) && value >= 0) details[key] = value;
	};
	put("input", costs.input);
	put("input_cache_read", costs.cacheRead);
	put("input_cache_creation", costs.cacheWrite);
	put("output", costs.output);
	put("total", costs.total);
	return Object.values(details).some(value => value > 0) ? details : undefined;
}

// ════════════════════════════════════════════════════════════════════════════════════════════════
// §3 Sanitize — redact secrets, drop images, deep-truncate: every string that leaves memory.
//    Runs on the exporter's side of the queue (a flush), never inside a hook the host awaits.
//    The secret patterns and the redactor engine are in the Appendix at the end of the file.
// ════════════════════════════════════════════════════════════════════════════════════════════════

type Redactor = (text: string) => string;

interface SanitizeOptions {
	redact: Redactor;
	/** Longest string kept whole; longer ones keep head and tail around a marker. */
	maxFieldChars: number;
	/** Total characters one record may carry; past it strings shrink to short markers. */
	budgetChars: number;
	/** Long texts already sanitized, shared by every record the exporter prepares. */
	texts?: SanitizedTexts;
}

/** Drops a map's oldest entries (insertion order) while `total` is over `limit`; returns what is left of it. */
function dropOldest<K, V>(map: Map<K, V>, total: number, limit: number, size: (key: K, value: V) => number): number {
	for (const [key, value] of map) {
		if (total <= limit) break;
		map.delete(key);
		total -= size(key, value);
	}
	return total;
}

/** The limit a text not cut is remembered under (see SanitizedTexts.get). */
const WHOLE = -1;
/** Texts at least this long are remembered once sanitized. */
const SANITIZED_TEXT_MIN_CHARS = 2048;
/**
 * Characters of host texts plus results the memory holds: a tool output is met again right after its own
 * observation is encoded (as a message of the next LLM call's input), so one long output and its result suffice.
 */
const SANITIZED_TEXTS_CHARS = 300_000;

/**
 * Long texts already redacted and cut, by text and limit: a tool's output is sanitized for the tool's
 * own observation and again as a message of the next LLM call's input; a redaction pass over 64 KB is
 * the costliest step of a flush. Found by a short fingerprint (length, head and tail) and confirmed by
 * comparing the texts: hashing a host's fresh copy of a long text would cost more than comparing it.
 * Bounded by characters, oldest out first.
 */
class SanitizedTexts {
	private readonly entries = new Map<string, { text: string; limit: number; result: string }>();
	private chars = 0;

	private static fingerprint(text: string): string {
		return `${text.length}:${text.slice(0, 48)}\u0000${text.slice(-48)}`;
	}

	/** A text kept whole (not over its limit) came out the same under any limit it is not over either. */
	get(text: string, limit: number): string | undefined {
		const found = this.entries.get(SanitizedTexts.fingerprint(text));
		if (found === undefined) return undefined;
		const fits = found.limit === WHOLE ? text.length <= limit : found.limit === limit;
		return fits && found.text === text ? found.result : undefined;
	}

	set(text: string, limit: number, result: string): void {
		const key = SanitizedTexts.fingerprint(text);
		const old = this.entries.get(key);
		if (old) {
			this.entries.delete(key);
			this.chars -= old.text.length + old.result.length;
		}
		this.entries.set(key, { text, limit: text.length <= limit ? WHOLE : limit, result });
		this.chars += text.length + result.length;
		this.chars = dropOldest(this.entries, this.chars, SANITIZED_TEXTS_CHARS, (_key, entry) => entry.text.length + entry.result.length);
	}
}

const MAX_DEPTH = 12;
const MAX_ARRAY_ITEMS = 500;
const MAX_OBJECT_KEYS = 300;

/**
 * A JSON-safe, redacted, bounded copy of any value. Never throws: cycles, BigInt, functions,
 * symbols, Map/Set, Error, Date, typed arrays and throwing getters all come out readable.
 */
function sanitize(value: unknown, options: SanitizeOptions): unknown {
	if (typeof value === "string") return sanitizeString(value, options, { budget: options.budgetChars });
	const state: SanitizeState = { budget: options.budgetChars, options, ancestors: [] };
	try {
		return sanitizeValue(value, 0, state);
	} catch (error) {
		return `[unserializable: ${options.redact(errorText(error))}]`;
	}
}

interface SanitizeState {
	budget: number;
	options: SanitizeOptions;
	/** The objects being walked, outermost first (at most MAX_DEPTH): one met again is a cycle. */
	ancestors: object[];
}

function sanitizeValue(input: unknown, depth: number, state: SanitizeState): unknown {
	if (input === null || input === undefined) return input ?? null;
	switch (typeof input) {
		case "string":
			return sanitizeString(input, state.options, state);
		case "number":
			return Number.isFinite(input) ? input : String(input);
		case "boolean":
			return input;
		case "bigint":
			return input.toString();
		case "function":
			return `[function ${input.name || "anonymous"}]`;
		case "symbol":
			return input.toString();
	}
	const object = input as object;
	if (state.ancestors.includes(object)) return "[circular]";
	if (depth >= MAX_DEPTH) return `[${object.constructor?.name ?? "object"} nested too deep]`;
	if (object instanceof Date) return Number.isNaN(object.getTime()) ? "[invalid date]" : object.toISOString();
	if (object instanceof Error) {
		return sanitizeValue({ name: object.name, message: object.message, stack: object.stack }, depth, state);
	}
	if (ArrayBuffer.isView(object) || object instanceof ArrayBuffer) {
		return `[${object.constructor.name} ${(object as ArrayBuffer).byteLength} bytes]`;
	}
	if (object instanceof RegExp) return object.toString();
	state.ancestors.push(object);
	try {
		if (object instanceof Map) return sanitizeValue(Object.fromEntries([...object.entries()].slice(0, MAX_OBJECT_KEYS)), depth, state);
		if (object instanceof Set) return sanitizeValue([...object], depth, state);
		if (Array.isArray(object)) {
			const count = Math.min(object.length, MAX_ARRAY_ITEMS);
			const items: unknown[] = new Array(count);
			for (let index = 0; index < count; index++) items[index] = sanitizeValue(object[index], depth + 1, state);
			if (object.length > MAX_ARRAY_ITEMS) items.push(`[… ${object.length - MAX_ARRAY_ITEMS} more items]`);
			return items;
		}
		if (isImagePart(object)) return describeImagePart(object);
		const output: Record<string, unknown> = {};
		const keys = Object.keys(object);
		const count = Math.min(keys.length, MAX_OBJECT_KEYS);
		for (let index = 0; index < count; index++) {
			const key = keys[index]!;
			let child: unknown;
			try {
				child = (object as Record<string, unknown>)[key];
			} catch (error) {
				child = `[unreadable: ${errorText(error)}]`;
			}
			if (child !== undefined) output[key] = sanitizeValue(child, depth + 1, state);
		}
		if (keys.length > MAX_OBJECT_KEYS) output["…"] = `${keys.length - MAX_OBJECT_KEYS} more keys`;
		return output;
	} finally {
		state.ancestors.pop();
	}
}

function sanitizeString(input: string, options: SanitizeOptions, state: { budget: number }): string {
	const limit = Math.max(200, Math.min(options.maxFieldChars, state.budget));
	const remember = options.texts && input.length >= SANITIZED_TEXT_MIN_CHARS ? options.texts : undefined;
	let text = remember?.get(input, limit);
	if (text === undefined) {
		text = input.includes(";base64,") ? dropDataUrls(input) : input;
		text = text.length > limit ? truncateMiddle(text, limit, options.redact) : options.redact(text);
		remember?.set(input, limit, text);
	}
	state.budget -= text.length;
	return text;
}

/**
 * Keep head and tail of a long string. Cuts land on whitespace so no secret is ever split in two
 * (a half secret would slip past the redactor); a private-key block cut open is dropped whole.
 */
function truncateMiddle(text: string, limit: number, redact: Redactor): string {
	const half = Math.floor(limit / 2);
	const windowStart = Math.max(0, half - 512);
	const lastSpace = text.slice(windowStart, half).search(/\s\S*$/);
	const headEnd = lastSpace >= 0 ? windowStart + lastSpace + 1 : half;
	let tailStart = text.length - half;
	const nextSpace = text.slice(tailStart, tailStart + 512).search(/\s/);
	if (nextSpace >= 0) tailStart += nextSpace;
	let head = text.slice(0, headEnd);
	let tail = text.slice(tailStart);
	const openKey = head.lastIndexOf("-----BEGIN");
	if (openKey >= 0 && head.indexOf("-----END", openKey) < 0) head = head.slice(0, openKey);
	const closeKey = tail.indexOf("PRIVATE KEY-----");
	if (closeKey >= 0 && tail.lastIndexOf("-----BEGIN", closeKey) < 0) tail = tail.slice(closeKey + 16);
	const cut = text.length - head.length - tail.length;
	// thousands separators by hand: toLocaleString builds an ICU number format on every call
	return `${redact(head)}\n[… ${String(cut).replace(/\B(?=(\d{3})+$)/g, ",")} chars truncated by langfuse.ts …]\n${redact(tail)}`;
}

const DATA_URL = /data:([\w.+-]+\/[\w.+-]+);base64,[A-Za-z0-9+/=\r\n]+/g;

function dropDataUrls(text: string): string {
	return text.replace(DATA_URL, (match, mediaType: string) => imageMarker(mediaType, match.length));
}

function imageMarker(mediaType: string, base64Chars: number): string {
	return `[image ${mediaType} ${formatBytes(Math.round((base64Chars * 3) / 4))} base64 omitted]`;
}

/** Image content parts in the shapes the hosts and providers use. */
function isImagePart(object: object): boolean {
	const part = object as Record<string, unknown>;
	return (
		(part.type === "image" || part.type === "input_image" || part.type === "image_url") &&
		(typeof part.data === "string" || typeof part.image_url === "string" || typeof (part.source as any)?.data === "string")
	);
}

function describeImagePart(object: object): Record<string, unknown> {
	const part = object as Record<string, any>;
	const data: string = part.data ?? part.source?.data ?? part.image_url ?? "";
	const mediaType = part.mimeType ?? part.mediaType ?? part.source?.media_type ?? data.match(/^data:([^;]+)/)?.[1] ?? "image";
	return { type: part.type, image: imageMarker(mediaType, data.length) };
}

interface PrepareOptions extends SanitizeOptions {
	exportMode: ExportMode;
	/** Chat messages already cleaned and encoded, shared by every record the exporter prepares. */
	chatCache?: ChatCache;
}

/** A string's JSON escaping without the quotes: what it becomes inside a JSON string value. */
const escapeJson = (text: string) => JSON.stringify(text).slice(1, -1);

/**
 * JSON text that is already sanitized and encoded, kept as the UTF-8 bytes of its escaped form (as it
 * goes inside a JSON string, the OTLP attribute value), in parts: the span encoder copies them into
 * the span's bytes as they are, never escaping or even joining them as text. `escaped` and `json` are
 * the texts (made on demand); `toJSON` makes it an ordinary value anywhere else (the spool writes
 * records as JSON, legacy ingestion nests it).
 */
class PreparedJson {
	constructor(readonly parts: readonly Buffer[]) {}
	get escaped(): string {
		return Buffer.concat(this.parts).toString("utf8");
	}
	get json(): string {
		return JSON.parse(`"${this.escaped}"`) as string;
	}
	toJSON(): unknown {
		return JSON.parse(this.json);
	}
}

/** What Langfuse's UI parses as JSON (~300 KB); a generation's chat input stays under it. */
const CHAT_MAX_CHARS = 280_000;
/** Tool definitions beyond this many characters lose their parameter schemas, then their descriptions. */
const CHAT_TOOLS_MAX_CHARS = 80_000;
/** One message of a chat input carries at most this many characters (the tool's own observation has it all). */
const CHAT_MESSAGE_MAX_CHARS = 100_000;
/** Strings longer than this enter a message's cache key as a number, one per distinct text. */
const CHAT_TEXT_ID_MIN_CHARS = 256;
/**
 * The chat cache's bounds: encoded messages (bytes, with their keys), and the long strings it numbers
 * (characters: these are the host's own strings, up to twice as many bytes). The encodings hold several
 * inputs' worth (one is ≤ CHAT_MAX_CHARS), so a session's calls all hit. The numbers hold two: a string
 * is looked up only when the previous call did not have its message at the same place (after a
 * compaction, a new conversation), and one the host has dropped is kept alive by us alone (under Node,
 * every MB that survives a collection lets the heap grow by about four before the next).
 */
const CHAT_CACHE_BYTES = 2 * 1024 * 1024;
const CHAT_TEXT_ID_CHARS = 600_000;

/** One host message, encoded: its ChatML items escaped for a JSON string (UTF-8), and the length they have unescaped. */
interface EncodedItems {
	bytes: Buffer;
	length: number;
}

/** A call's request as prepareChat saw it: what its messages (by index), tools and system prompt encoded to. */
interface SeenRequest {
	request: ChatRequest;
	maxFieldChars: number;
	items: (EncodedItems | undefined)[];
	tools?: EncodedItems;
	system?: EncodedItems;
}

/** How many calls' requests the chat cache remembers (several sessions or subagents may alternate). */
const CHAT_RECENT_REQUESTS = 4;

/**
 * Each message of a conversation, sanitized and encoded once per process: a generation's input repeats
 * the whole history, so without this a session's cost grows with the square of its length. Keyed by the
 * message's content (hosts rebuild their payloads per call, and an object seen before may have changed
 * since): its structure and strings, every long string replaced by the number of its text. Numbers are given per
 * distinct text by a map keyed by the text itself (a lookup of a string seen before is a cached hash and
 * a pointer compare), never reused: two texts never share one, so a key names exactly one content. Both
 * maps are bounded by characters, least recently used out first; a text numbered again gets a new number
 * (its old entries are then only missed, never wrong).
 */
class ChatCache {
	private readonly entries = new Map<string, EncodedItems>();
	private bytes = 0;
	private readonly textIds = new Map<string, string>();
	private textIdChars = 0;
	private lastTextId = 0;
	hits = 0;
	misses = 0;
	/** The last few calls' requests, newest first, with what their messages encoded to. */
	private readonly recent: SeenRequest[] = [];

	constructor(
		private readonly maxBytes = CHAT_CACHE_BYTES,
		private readonly maxTextIdChars = CHAT_TEXT_ID_CHARS,
	) {}

	/**
	 * A string as it enters a key: a long one as NUL + its number, a short one as it is (one that starts
	 * with NUL gets a second NUL in front, so no text can pass for a number).
	 */
	private keyText(text: string): string {
		if (text.length <= CHAT_TEXT_ID_MIN_CHARS) return text.charCodeAt(0) === 0 ? `\u0000${text}` : text;
		let found = this.textIds.get(text);
		if (found !== undefined) {
			this.textIds.delete(text);
			this.textIds.set(text, found);
			return found;
		}
		found = `\u0000${++this.lastTextId}`;
		this.textIds.set(text, found);
		this.textIdChars += text.length;
		this.textIdChars = dropOldest(this.textIds, this.textIdChars, this.maxTextIdChars, oldText => oldText.length);
		return found;
	}

	/**
	 * A value's content as a key: strings length-prefixed (no escaping to do), long ones by number; plain
	 * objects and arrays only (anything else — a Date, a Map, a class — is not cached: undefined).
	 */
	private contentKey(value: unknown, depth: number): string | undefined {
		switch (typeof value) {
			case "string": {
				const text = this.keyText(value);
				return `"${text.length}:${text}`;
			}
			case "number":
				return `n${value};`;
			case "boolean":
				return value ? "t" : "f";
			case "undefined":
				return "u";
			case "object": {
				if (value === null) return "z";
				if (depth > MAX_DEPTH) return undefined;
				let key: string;
				if (Array.isArray(value)) {
					key = "[";
					for (const item of value) {
						const part = this.contentKey(item, depth + 1);
						if (part === undefined) return undefined;
						key += part;
					}
					return `${key}]`;
				}
				const prototype = Object.getPrototypeOf(value);
				if (prototype !== Object.prototype && prototype !== null) return undefined;
				key = "{";
				for (const name of Object.keys(value)) {
					const part = this.contentKey((value as Record<string, unknown>)[name], depth + 1);
					if (part === undefined) return undefined;
					key += `${name.length}:${name}${part}`;
				}
				return `${key}}`;
			}
			default:
				return undefined;
		}
	}

	/**
	 * The previous call of the conversation `request` continues: the newest recent request whose first
	 * message is the same content, one whose second is the same too preferred (subagents often share a
	 * system prompt). Its messages, compared index by index with sameContent (a memory compare of the
	 * strings, no key to build), give what most of this call's history encodes to.
	 */
	previousRequest(request: ChatRequest, maxFieldChars: number): SeenRequest | undefined {
		const [first, second] = request.messages;
		let found: SeenRequest | undefined;
		for (const seen of this.recent) {
			const [seenFirst, seenSecond] = seen.request.messages;
			if (seen.maxFieldChars !== maxFieldChars || seenFirst === undefined || !sameContent(first, seenFirst)) continue;
			if (second !== undefined && seenSecond !== undefined && sameContent(second, seenSecond)) return seen;
			found ??= seen;
		}
		return found;
	}

	/** A message of the previous call, the same content again. */
	reused(item: EncodedItems): EncodedItems {
		this.hits++;
		return item;
	}

	/** A message known to be new (appended since the conversation's previous call): encoded, not keyed. */
	fresh(options: SanitizeOptions, make: () => unknown): EncodedItems {
		this.misses++;
		return encodedItems(encodeItems(make(), options));
	}

	rememberRequest(seen: SeenRequest): void {
		this.recent.unshift(seen);
		if (this.recent.length > CHAT_RECENT_REQUESTS) this.recent.pop();
	}

	/** The encoded ChatML messages (JSON array items, comma-joined) of one host message. */
	encoded(raw: unknown, options: SanitizeOptions, make: () => unknown): EncodedItems {
		let text: string | undefined;
		try {
			text = this.contentKey(raw, 0);
		} catch {
			text = undefined; // a getter that throws
		}
		if (text === undefined) return encodedItems(encodeItems(make(), options));
		const key = `${options.maxFieldChars}:${text}`;
		const found = this.entries.get(key);
		if (found !== undefined) {
			this.hits++;
			this.entries.delete(key);
			this.entries.set(key, found);
			return found;
		}
		this.misses++;
		const value = encodedItems(encodeItems(make(), options));
		this.entries.set(key, value);
		this.bytes += value.bytes.length + key.length;
		this.bytes = dropOldest(this.entries, this.bytes, this.maxBytes, (oldKey, oldValue) => oldValue.bytes.length + oldKey.length);
		return value;
	}
}

/** JSON text → its escaped UTF-8 bytes (the quotes JSON.stringify adds are left out by a view, not a copy). */
function encodedItems(json: string): EncodedItems {
	const quoted = JSON.stringify(json);
	const bytes = ownBytes(quoted);
	return { bytes: bytes.subarray(1, bytes.length - 1), length: json.length };
}

/**
 * UTF-8 bytes in a buffer of their own: Buffer.from puts small ones in a shared 8 KB pool slab, and one
 * small cached buffer would keep its whole slab alive.
 */
function ownBytes(text: string): Buffer {
	const bytes = Buffer.allocUnsafeSlow(Buffer.byteLength(text));
	bytes.write(text);
	return bytes;
}
/** Parts of a chat input that never change, as escaped UTF-8. */
const CHAT_OPEN = Buffer.from(escapeJson('{"messages":['));
const CHAT_TOOLS = Buffer.from(escapeJson('],"tools":['));
const CHAT_CLOSE_ARRAY = Buffer.from(escapeJson("]}"));
const CHAT_COMMA = Buffer.from(",");

/** Sanitized items of an array as JSON, comma-joined (so arrays are assembled without re-encoding). */
function encodeItems(items: unknown, options: SanitizeOptions): string {
	const list = Array.isArray(items) ? items : [items];
	// each message on its own budget: the conversation's size is bounded by the elision in prepareChat
	// (the slack lets a message's main text be cut exactly as the tool's own observation was: one sanitizing serves both)
	return list.map(item => JSON.stringify(sanitize(item, { ...options, budgetChars: options.maxFieldChars + 1000 }))).join(",");
}

/**
 * A generation's chat input, sanitized and encoded: `{"messages":[…],"tools":[…]}`. The leading system
 * messages stay, then messages are taken newest first while they fit under CHAT_MAX_CHARS (the newest
 * always); the older ones are not even looked at: one marker message says how many were left out. So a
 * call costs at most what fits in one input, whatever the history's length. Each message comes, in this
 * order of cost, from the conversation's previous call (same index, same content), as new (appended
 * since that call: encoded), or from the cache by its content key. Assembled from the pieces by
 * concatenation, in escaped form (JSON escaping is per character).
 */
function prepareChat(request: ChatRequest, sanitizeOptions: SanitizeOptions, cache: ChatCache): PreparedJson {
	// system prompt + newest message + tools stay under CHAT_MAX_CHARS even when nothing else fits
	const options = { ...sanitizeOptions, maxFieldChars: Math.min(sanitizeOptions.maxFieldChars, CHAT_MESSAGE_MAX_CHARS) };
	const raws = request.messages;
	const previous = cache.previousRequest(request, options.maxFieldChars);
	const current: SeenRequest = { request, maxFieldChars: options.maxFieldChars, items: new Array(raws.length) };
	/** What the same message encoded to in the conversation's previous call, if it is the same content. */
	const before = (index: number): EncodedItems | undefined => {
		const item = previous?.items[index];
		return item && sameContent(raws[index], previous!.request.messages[index]) ? cache.reused(item) : undefined;
	};
	const make = (index: number) => () => chatMessagesOf(raws[index]);
	// a message appended since the previous call is new: encoded at once, no content key to build for it
	const encode = (index: number) =>
		(current.items[index] = before(index) ?? (previous && index >= previous.request.messages.length ? cache.fresh(options, make(index)) : cache.encoded(raws[index], options, make(index))));
	if (request.tools?.length) {
		current.tools = previous?.tools && sameContent(request.tools, previous.request.tools) ? cache.reused(previous.tools) : cache.encoded(request.tools, options, () => chatTools(request.tools));
		if (current.tools.length > CHAT_TOOLS_MAX_CHARS) {
			const slim = chatTools(request.tools).map(tool => ({ type: tool.type, function: { name: tool.function.name, description: tool.function.description } }));
			current.tools = encodedItems(encodeItems(slim, options));
			if (current.tools.length > CHAT_TOOLS_MAX_CHARS) current.tools = encodedItems(encodeItems(slim.map(tool => ({ type: tool.type, function: { name: tool.function.name } })), options));
		}
	}
	const tools = current.tools ?? { bytes: Buffer.alloc(0), length: 0 };
	const head: EncodedItems[] = [];
	if (request.system !== undefined) {
		current.system = previous?.system && sameContent(request.system, previous.request.system) ? cache.reused(previous.system) : cache.encoded(request.system, options, () => chatSystem(request.system));
		head.push(current.system);
	}
	let first = 0;
	while (first < raws.length && isObject(raws[first]) && ["system", "developer"].includes((raws[first] as { role?: unknown }).role as string)) head.push(encode(first++));
	let size = tools.length + 64 + head.reduce((sum, item) => sum + item.length + 1, 0);
	const tail: EncodedItems[] = [];
	let next = raws.length;
	while (next > first) {
		const item = encode(next - 1);
		if (next < raws.length && size + item.length + 1 > CHAT_MAX_CHARS) break;
		size += item.length + 1;
		tail.push(item);
		next--;
	}
	cache.rememberRequest(current);
	const kept = head.filter(item => item.length).map(item => item.bytes);
	if (next > first) {
		kept.push(Buffer.from(escapeJson(JSON.stringify({ role: "system", content: `[langfuse.ts: ${next - first} earlier message(s) left out to keep this input under Langfuse's display limit]` }))));
	}
	for (let index = tail.length - 1; index >= 0; index--) if (tail[index]!.length) kept.push(tail[index]!.bytes);
	// {"messages":[ m1 , m2 … ] (,"tools":[ t ]) }
	const parts: Buffer[] = [CHAT_OPEN];
	kept.forEach((item, index) => (index ? parts.push(CHAT_COMMA, item) : parts.push(item)));
	if (tools.length) parts.push(CHAT_TOOLS, tools.bytes);
	parts.push(CHAT_CLOSE_ARRAY);
	return new PreparedJson(parts);
}

/**
 * Two host values with the same content, where the second is a fresh copy: equal primitives, plain
 * objects with the same keys and arrays of the same length, their values the same content again, no
 * object shared between them. A shared object is not trusted (the host may have changed it in place
 * since it was encoded): the content key decides then.
 */
function sameContent(a: unknown, b: unknown, depth = 0): boolean {
	if (typeof a !== "object" || a === null) return a === b;
	if (typeof b !== "object" || b === null || a === b || depth > MAX_DEPTH) return false;
	if (Array.isArray(a)) {
		if (!Array.isArray(b) || a.length !== b.length) return false;
		for (let index = 0; index < a.length; index++) if (!sameContent(a[index], b[index], depth + 1)) return false;
		return true;
	}
	const prototype = Object.getPrototypeOf(a);
	if ((prototype !== Object.prototype && prototype !== null) || Object.getPrototypeOf(b) !== prototype || Array.isArray(b)) return false;
	// for…in, not Object.keys: this runs for every message of every call, and key arrays would be its only garbage
	// (plain objects: nothing inherited is enumerable; the same keys in any order are the same content)
	let keys = 0;
	for (const key in a) {
		if (!Object.hasOwn(b, key) || !sameContent((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key], depth + 1)) return false;
		keys++;
	}
	for (const _key in b) if (--keys < 0) return false;
	return keys === 0;
}

/**
 * The only way a record leaves memory: every string redacted and bounded; under metadata_only the
 * content (prompts, completions, tool arguments and results, tool error text) is left out entirely.
 */
function prepareRecord(record: ObservationRecord, options: PrepareOptions): ObservationRecord {
	const clean = (value: unknown) => (value === undefined ? undefined : sanitize(value, options));
	const content = (value: unknown) =>
		options.exportMode !== "full" ? undefined : value instanceof ChatRequest ? prepareChat(value, options, options.chatCache ?? new ChatCache()) : clean(value);
	const cleanText = (value: string | undefined) => (value === undefined ? undefined : (clean(value) as string));
	const statusMessage =
		options.exportMode === "full" || record.type !== "tool" ? cleanText(record.statusMessage) : record.statusMessage && "tool failed";
	return {
		...record,
		name: cleanText(record.name)!,
		input: content(record.input),
		output: content(record.output),
		metadata: clean(record.metadata) as Metadata | undefined,
		statusMessage,
		model: cleanText(record.model),
		modelParameters: clean(record.modelParameters) as ObservationRecord["modelParameters"],
		traceName: cleanText(record.traceName),
		traceTags: record.traceTags?.map(tag => cleanText(tag)!),
		trace: record.trace && {
			name: cleanText(record.trace.name)!,
			input: content(record.trace.input),
			output: content(record.trace.output),
			tags: record.trace.tags.map(tag => cleanText(tag)!),
			metadata: clean(record.trace.metadata) as Metadata,
		},
	};
}

// ════════════════════════════════════════════════════════════════════════════════════════════════
// §4 Encode — sanitized records → OTLP/HTTP JSON spans (default) or legacy ingestion events.
// ════════════════════════════════════════════════════════════════════════════════════════════════

type OtlpValue =
	| { stringValue: string }
	| { intValue: string }
	| { doubleValue: number }
	| { boolValue: boolean }
	| { arrayValue: { values: OtlpValue[] } };

function otlpValue(value: unknown): OtlpValue {
	if (typeof value === "string") return { stringValue: value };
	if (typeof value === "boolean") return { boolValue: value };
	if (typeof value === "number") return Number.isInteger(value) ? { intValue: String(value) } : { doubleValue: value };
	if (Array.isArray(value) && value.every(item => typeof item === "string")) return { arrayValue: { values: value.map(otlpValue) } };
	return { stringValue: JSON.stringify(value) };
}

/**
 * OTLP attributes as a JSON array's items (`{"key":…,"value":{"stringValue":…}}`, comma-joined): undefined
 * values are left out, objects become JSON strings as Langfuse expects. Prepared JSON stays in parts, its
 * escaped bytes (a generation's input is the whole conversation: it is copied, never escaped again).
 * Text and bytes in order; joined they are the JSON.
 */
function otlpAttributesParts(entries: Record<string, unknown>): (string | Buffer)[] {
	const parts: (string | Buffer)[] = [];
	let text = "";
	for (const key in entries) {
		const value = entries[key];
		if (value === undefined || value === null) continue;
		if (text) text += ",";
		if (value instanceof PreparedJson) {
			parts.push(`${text}${attributeHead(key)}{"stringValue":"`);
			for (const part of value.parts) parts.push(part);
			text = '"}}';
		} else text += typeof value === "string" ? `${attributeHead(key)}{"stringValue":${JSON.stringify(value)}}}` : `${attributeHead(key)}${JSON.stringify(otlpValue(value))}}`;
	}
	parts.push(text);
	return parts;
}

const attributeHeads = new Map<string, string>();
/** `{"key":"<key>","value":` — the attribute keys are a fixed set, each escaped once. */
function attributeHead(key: string): string {
	let head = attributeHeads.get(key);
	if (head === undefined) attributeHeads.set(key, (head = `{"key":${JSON.stringify(key)},"value":`));
	return head;
}

const json = (value: unknown) => (value === undefined ? undefined : JSON.stringify(value));
/** Input and output as Langfuse's own SDK sends them: strings as they are, anything else as JSON (prepared JSON as it is). */
const io = (value: unknown) => (typeof value === "string" || value instanceof PreparedJson ? value : json(value));
/** Metadata as one JSON object, so Langfuse keeps its structure (and numbers stay numbers). */
const metadataJson = (metadata: Metadata | undefined) => (metadata && Object.keys(metadata).length ? json(metadata) : undefined);
const nanos = (ms: number) => `${Math.round(ms)}000000`;
const nonEmpty = (list: string[] | undefined) => (list?.length ? list : undefined);
/** Our own name and version: trace metadata, never Langfuse's `version` field (that is the user's app version). */
const TRACER = `langfuse.ts ${VERSION}`;
const isoTime = (ms: number) => new Date(ms).toISOString();

/**
 * The instrumentation scope Langfuse recognises as carrying its own `langfuse.*` attributes. Older
 * servers read usage_details and cost_details only from this scope, and every server copies all raw
 * attributes of any other scope into the observation's metadata (storing input and output twice).
 */
const OTLP_SCOPE = "langfuse-sdk";

/** One span as UTF-8 bytes (so batches are sized exactly): its text as buffers, prepared JSON as the shared buffers it is. */
function encodeSpanBytes(record: ObservationRecord): Item {
	const parts = spanParts(record);
	if (parts.length === 1) return Buffer.from(parts[0] as string);
	let length = 0;
	const buffers = parts.map(part => {
		const bytes = typeof part === "string" ? Buffer.from(part) : part;
		length += bytes.length;
		return bytes;
	});
	return new ItemParts(buffers, length);
}

/** One span's JSON in parts: text, and the bytes of prepared JSON (see otlpAttributesParts). */
function spanParts(record: ObservationRecord): (string | Buffer)[] {
	const trace = record.trace;
	const attributes = otlpAttributesParts({
		"langfuse.observation.type": record.type,
		"langfuse.observation.input": io(record.input),
		"langfuse.observation.output": io(record.output),
		"langfuse.observation.level": record.level,
		"langfuse.observation.status_message": record.statusMessage,
		"langfuse.observation.model.name": record.model,
		"langfuse.observation.model.parameters": json(record.modelParameters),
		"langfuse.observation.usage_details": json(record.usage),
		"langfuse.observation.cost_details": json(record.cost),
		// JSON-encoded like the official SDKs: older servers JSON.parse this attribute
		"langfuse.observation.completion_start_time": record.completionStartMs === undefined ? undefined : json(isoTime(record.completionStartMs)),
		"langfuse.observation.metadata": metadataJson(record.metadata),
		// Trace name, tags, user, session, environment and release on every span, as the official SDK's
		// propagateAttributes does: Langfuse v4 reads them from each span's own row.
		"session.id": record.sessionId,
		"user.id": record.userId,
		"langfuse.environment": record.environment,
		"langfuse.release": record.release,
		"langfuse.version": record.version,
		"langfuse.trace.name": trace?.name ?? record.traceName,
		"langfuse.trace.input": io(trace?.input),
		"langfuse.trace.output": io(trace?.output),
		"langfuse.trace.tags": nonEmpty(trace?.tags ?? record.traceTags),
		"langfuse.trace.metadata": metadataJson(trace && { ...trace.metadata, tracer: TRACER }),
	});
	// JSON.stringify of {traceId, …, endTimeUnixNano, attributes, status}, with the attributes put in as they are
	const head = JSON.stringify({
		traceId: record.traceId,
		spanId: record.id,
		parentSpanId: record.parentId,
		name: record.name,
		kind: 1,
		startTimeUnixNano: nanos(record.startMs),
		endTimeUnixNano: nanos(record.endMs),
	});
	const status = JSON.stringify(record.level === "ERROR" ? { code: 2, message: record.statusMessage ?? "error" } : { code: 0 });
	const last = attributes.length - 1;
	attributes[0] = `${head.slice(0, -1)},"attributes":[${attributes[0] as string}`;
	attributes[last] = `${attributes[last] as string}],"status":${status}}`;
	return attributes;
}

function otlpBody(spans: string[]): string {
	const attributes = otlpAttributesParts({
		// no service.version: Langfuse would take it for the user's app version
		"service.name": "langfuse.ts",
		"telemetry.sdk.name": "langfuse.ts",
		"telemetry.sdk.version": VERSION,
		"telemetry.sdk.language": "js",
	}).join("");
	const resource = `{"attributes":[${attributes}]}`;
	return `{"resourceSpans":[{"resource":${resource},"scopeSpans":[{"scope":{"name":"${OTLP_SCOPE}","version":"${VERSION}"},"spans":[${spans.join(",")}]}]}]}`;
}

/** Legacy ingestion: a trace-create for records that carry trace fields, then the observation. */
function ingestionEvents(record: ObservationRecord): Record<string, unknown>[] {
	// The server merges versions in timestamp order: the emission time, strictly increasing per process.
	const timestamp = isoTime(record.emittedMs ?? record.endMs);
	const events: Record<string, unknown>[] = [];
	if (record.trace) {
		events.push({
			id: `${record.emissionId}-t`,
			timestamp,
			type: "trace-create",
			body: {
				id: record.traceId,
				timestamp: isoTime(record.startMs),
				name: record.trace.name,
				userId: record.userId,
				sessionId: record.sessionId,
				input: record.trace.input,
				output: record.trace.output,
				metadata: { ...record.trace.metadata, tracer: TRACER },
				tags: record.trace.tags,
				release: record.release,
				version: record.version,
				environment: record.environment,
			},
		});
	}
	const body: Record<string, unknown> = {
		id: record.id,
		traceId: record.traceId,
		parentObservationId: record.parentId,
		name: record.name,
		startTime: isoTime(record.startMs),
		metadata: record.type === "span" ? record.metadata : { ...record.metadata, observationType: record.type },
		input: record.input,
		output: record.output,
		level: record.level,
		statusMessage: record.statusMessage,
		version: record.version,
		environment: record.environment,
	};
	if (record.type !== "event") body.endTime = isoTime(record.endMs);
	if (record.type === "generation") {
		Object.assign(body, {
			model: record.model,
			modelParameters: record.modelParameters,
			...legacyUsage(record.usage, record.cost),
			completionStartTime: record.completionStartMs === undefined ? undefined : isoTime(record.completionStartMs),
		});
	}
	const type = record.type === "generation" ? "generation-create" : record.type === "event" ? "event-create" : "span-create";
	events.push({ id: `${record.emissionId}-o`, timestamp, type, body });
	return events;
}

/**
 * Usage for every server generation: `usageDetails` / `costDetails` (v3+) and the older `usage` object,
 * the only one Langfuse v2 reads (its schema drops the others silently). `usage.input` / `.output` follow
 * Langfuse's adding rule (every key containing "input" / "output", so cache reads and writes count as
 * input). A v3 server reads both and lets usageDetails win key by key, so the details always name
 * `input` and `output` themselves: the sums in `usage` never land on top of them.
 */
function legacyUsage(usage: Record<string, number> | undefined, cost: Record<string, number> | undefined): Record<string, unknown> {
	const sum = (details: Record<string, number> | undefined, part: string) => {
		let total: number | undefined;
		for (const [key, value] of Object.entries(details ?? {})) if (key.includes(part)) total = (total ?? 0) + value;
		return total;
	};
	const withBase = (details: Record<string, number> | undefined) => {
		if (!details) return undefined;
		const out = { ...details };
		if (sum(details, "input") !== undefined) out.input ??= 0;
		if (sum(details, "output") !== undefined) out.output ??= 0;
		return out;
	};
	const input = sum(usage, "input");
	const output = sum(usage, "output");
	const legacy: Record<string, unknown> = {
		input,
		output,
		total: usage?.total ?? (input !== undefined || output !== undefined ? (input ?? 0) + (output ?? 0) : undefined),
		unit: usage ? "TOKENS" : undefined,
		inputCost: sum(cost, "input"),
		outputCost: sum(cost, "output"),
		totalCost: cost?.total,
	};
	const hasUsage = Object.values(legacy).some(value => value !== undefined);
	return { usage: hasUsage ? legacy : undefined, usageDetails: withBase(usage), costDetails: withBase(cost) };
}

function ingestionBody(events: string[]): string {
	return `{"batch":[${events.join(",")}],"metadata":{"sdk_name":"langfuse.ts","sdk_version":"${VERSION}"}}`;
}

// ════════════════════════════════════════════════════════════════════════════════════════════════
// §5 Transport — queue → encoded batches → POST (gzip) with retry; the spool is the write-ahead log.
//    Each record is encoded once: those bytes are measured, spooled and sent. A batch goes to disk
//    unless Langfuse confirmed it before its write was due, and leaves disk only once confirmed.
//    The spool is keyed by destination (host + public key): a process sends only its own project's.
//    Duplicates are harmless: a batch split over several requests resends only the unconfirmed ones;
//    a kill between Langfuse's answer and the file's deletion resends the batch with the same span
//    and event ids, which Langfuse upserts.
// ════════════════════════════════════════════════════════════════════════════════════════════════

/** Work between two turns of the event loop: a flush never holds a host (or its TUI) longer. */
const SLICE_MS = 2;
/**
 * A new batch waits this long (at most a quarter of LANGFUSE_FLUSH_MS) for Langfuse's answer before
 * it is written to the spool; a batch confirmed sooner never touches the disk. The flush timer runs
 * that much earlier than LANGFUSE_FLUSH_MS, so a kill -9 still loses at most the last flush interval.
 */
const SPOOL_WRITE_DELAY_MS = 250;
/**
 * A prompt's end sends its observations at once, unless a request went out less than this long ago
 * (at most LANGFUSE_FLUSH_MS): then they go when the gap is over, with whatever the next prompts
 * recorded meanwhile. A trace still shows within a second; a burst of short prompts (a script, a
 * subagent fan-out) costs a few requests instead of one each (~1 ms of CPU apiece under Node's fetch).
 */
const PROMPT_SEND_GAP_MS = 1000;
/** Spool file names: `<ms>-<pid>-<seq><random>.<destination>.jsonl`, `.<owner pid>` appended while a
 *  live process has the file claimed. Files of langfuse.ts 0.1 have no destination (only `flush` sends them). */
const SPOOL_NAME = /^\d+-\d+-[0-9a-f]+(?:\.([0-9a-f]{12}))?\.jsonl(?:\.(\d+))?$/;

type Wire = "otel" | "ingestion";

/** The Langfuse project a batch belongs to. The secret key is never part of it, nor written anywhere. */
interface Destination {
	host: string;
	publicKey: string;
	/** 12 hex characters of sha256(host, public key): every spool file name carries it. */
	key: string;
}

function destinationOf(config: Pick<Config, "host" | "publicKey">): Destination {
	const key = createHash("sha256").update(`${config.host}\n${config.publicKey}`).digest("hex").slice(0, 12);
	return { host: config.host, publicKey: config.publicKey, key };
}

/** A spool file's first line; every further line is one encoded item, exactly as it is sent. */
interface BatchHeader {
	v: 2;
	/** otel: each item is one OTLP span; ingestion: one legacy ingestion event. */
	wire: Wire;
	/** The export mode the items were encoded under: a stricter mode later strips their content. */
	mode: ExportMode;
	host: string;
	publicKey: string;
}

/** Gives the event loop a turn: timers, I/O and the host's own work run before the next slice. */
const yieldToLoop = () => new Promise<void>(resolve => setImmediate(resolve));

/** `map` over items in slices of ≤ SLICE_MS with a yield between; undefined results are left out. */
async function sliced<T, R>(items: T[], map: (item: T) => R | R[] | undefined): Promise<R[]> {
	const out: R[] = [];
	let sliceEnd = performance.now() + SLICE_MS;
	for (const item of items) {
		const result = map(item);
		if (Array.isArray(result)) for (const part of result) out.push(part);
		else if (result !== undefined) out.push(result);
		if (performance.now() >= sliceEnd) {
			await yieldToLoop();
			sliceEnd = performance.now() + SLICE_MS;
		}
	}
	return out;
}

// ── encoding: once per record, never throwing ────────────────────────────────────────────────────

/**
 * One encoded item (an OTLP span, or a legacy ingestion event), exactly the bytes that are sent and
 * spooled: one buffer, or parts. A generation's span is parts: its chat input stays the chat cache's own
 * buffers, shared by every generation that repeats the message, and is first copied into the request
 * body (a session's inputs are tens of MB; made into one buffer per span, that much garbage per session).
 */
type Item = Buffer | ItemParts;

class ItemParts {
	constructor(
		readonly parts: readonly Buffer[],
		readonly length: number,
	) {}
}

/** Copies an item's bytes into `target` at `at`; returns how many. */
function copyItem(item: Item, target: Buffer, at: number): number {
	if (!(item instanceof ItemParts)) return item.copy(target, at);
	let offset = at;
	for (const part of item.parts) offset += part.copy(target, offset);
	return offset - at;
}

/** An item as one buffer (made only on rare paths: a stricter export mode, the switch to ingestion). */
const itemBuffer = (item: Item): Buffer => (item instanceof ItemParts ? Buffer.concat(item.parts as Buffer[], item.length) : item);

/** A record's encoded items: one OTLP span, or its ingestion events. Undefined when it cannot be encoded. */
function encodeRecord(record: ObservationRecord, wire: Wire): Item[] | undefined {
	try {
		if (typeof record.traceId !== "string" || typeof record.id !== "string") return undefined;
		if (!Number.isFinite(record.startMs) || !Number.isFinite(record.endMs)) return undefined;
		if (wire === "otel") return [encodeSpanBytes(record)];
		return ingestionEvents(record).map(event => Buffer.from(JSON.stringify(event)));
	} catch {
		return undefined;
	}
}

const itemsBytes = (items: Item[]) => items.reduce((sum, item) => sum + item.length + 1, 0);

/** The id Langfuse reports an item by: `traceId:spanId` of a span, or an ingestion event's id. */
function itemKey(item: Item): string {
	const head = Buffer.allocUnsafe(Math.min(160, item.length));
	const first = item instanceof ItemParts ? item.parts[0]! : item;
	if (first.length >= head.length) first.copy(head, 0, 0, head.length);
	else itemBuffer(item).copy(head, 0, 0, head.length);
	const match = /^\{"(?:id":"([^"]*)"|traceId":"([^"]*)","spanId":"([^"]*)")/.exec(head.toString("latin1"));
	return match ? match[1] ?? `${match[2]}:${match[3]}` : "";
}

let frameCache: Record<Wire, { head: Buffer; tail: Buffer }> | undefined;
/** What comes before and after the items of a request body. */
function frames(wire: Wire): { head: Buffer; tail: Buffer } {
	const split = (empty: string, marker: string) => {
		const at = empty.indexOf(marker) + marker.length;
		return { head: Buffer.from(empty.slice(0, at)), tail: Buffer.from(empty.slice(at)) };
	};
	frameCache ??= { otel: split(otlpBody([]), '"spans":['), ingestion: split(ingestionBody([]), '"batch":[') };
	return frameCache[wire];
}

const COMMA = 0x2c;
const NEWLINE = 0x0a;
const COMMA_BYTES = Buffer.from(",");

/** How many bytes a request body of these items has, uncompressed. */
function requestBytes(wire: Wire, items: Item[]): number {
	const { head, tail } = frames(wire);
	return head.length + tail.length + itemsBytes(items) - (items.length ? 1 : 0);
}

/** A request body from encoded items: a copy of their bytes, never a re-encoding. */
function requestBody(wire: Wire, items: Item[]): Buffer {
	const body = Buffer.allocUnsafeSlow(requestBytes(wire, items));
	let at = 0;
	for (const piece of bodyPieces(wire, items)) at += piece.copy(body, at);
	return body;
}

/**
 * zlib level 1: on our spans (JSON, repetitive) it takes well under half of the default level's CPU for
 * ~30 % more bytes, still ~20× smaller than plain: a bench session's 34.6 MB is 1.97 MB at 1, 1.50 MB at 6.
 */
const GZIP_LEVEL = 1;
/** zlib's output comes back in chunks of this size, each a turn of the main thread: a body compresses to a few. */
const GZIP_CHUNK_BYTES = 256 * 1024;
/** A body goes to zlib in blocks of this size. */
const GZIP_BLOCK_BYTES = 1024 * 1024;

/**
 * node:zlib is loaded at the first compressed request, not with this file: under Bun it is the costliest
 * builtin to load (~4 ms of a host's startup), and nothing before the first flush needs it.
 */
let zlibLoaded: Promise<typeof import("node:zlib")> | undefined;
const loadZlib = () => (zlibLoaded ??= import("node:zlib"));

/**
 * A request body from encoded items, gzip-compressed on zlib's thread as it is fed: the plain body (up to
 * MAX_INFLATED_REQUEST_BYTES) is never made. The bytes pass through one block, refilled once zlib has
 * taken it: each write is a round trip to zlib's thread, so few large ones.
 */
async function gzipBody(wire: Wire, items: Item[]): Promise<Buffer> {
	const gzip = (await loadZlib()).createGzip({ level: GZIP_LEVEL, chunkSize: GZIP_CHUNK_BYTES });
	const output: Buffer[] = [];
	gzip.on("data", (chunk: Buffer) => output.push(chunk));
	const ended = new Promise<void>((resolve, reject) => {
		gzip.on("end", resolve);
		gzip.on("error", reject);
	});
	ended.catch(() => {}); // a failed write rejects first; this one is then awaited by nobody
	const block = Buffer.allocUnsafeSlow(GZIP_BLOCK_BYTES);
	const pieces = bodyPieces(wire, items);
	const cursor = { index: 0, offset: 0 };
	for (;;) {
		const filled = fillBlock(pieces, cursor, block);
		if (filled === 0) break;
		await new Promise<void>((resolve, reject) => gzip.write(block.subarray(0, filled), error => (error ? reject(error) : resolve())));
	}
	gzip.end();
	await ended;
	return Buffer.concat(output);
}

/** A request body's bytes in order, as the pieces they are: frame, items (their parts), commas. */
function bodyPieces(wire: Wire, items: Item[]): Buffer[] {
	const { head, tail } = frames(wire);
	const pieces = [head];
	for (let index = 0; index < items.length; index++) {
		const item = items[index]!;
		if (index) pieces.push(COMMA_BYTES);
		if (item instanceof ItemParts) for (const part of item.parts) pieces.push(part);
		else pieces.push(item);
	}
	pieces.push(tail);
	return pieces;
}

/**
 * Copies pieces into `block` from where `cursor` stands until the block is full or the pieces end;
 * returns how many bytes it holds (0: nothing left). Kept apart from gzipBody's awaits, so the hot loop
 * is a small plain function (cheap for the JIT to optimize).
 */
function fillBlock(pieces: Buffer[], cursor: { index: number; offset: number }, block: Buffer): number {
	let at = 0;
	while (at < block.length && cursor.index < pieces.length) {
		const piece = pieces[cursor.index]!;
		const copied = piece.copy(block, at, cursor.offset, Math.min(piece.length, cursor.offset + block.length - at));
		at += copied;
		cursor.offset += copied;
		if (cursor.offset >= piece.length) {
			cursor.index++;
			cursor.offset = 0;
		}
	}
	return at;
}

/** Runs of consecutive items whose request body (uncompressed) stays under `limit` bytes. */
function packRequests(wire: Wire, items: Item[], limit: number): Item[][] {
	const { head, tail } = frames(wire);
	const overhead = head.length + tail.length;
	const requests: Item[][] = [];
	let current: Item[] = [];
	let size = overhead;
	for (const item of items) {
		if (current.length && size + item.length + 1 > limit) {
			requests.push(current);
			current = [];
			size = overhead;
		}
		current.push(item);
		size += item.length + 1;
	}
	if (current.length) requests.push(current);
	return requests;
}

/** Attributes that carry content (prompts, completions, tool input and output). */
const CONTENT_ATTRIBUTE = /(?:^|\.)(?:input|output)$|^gen_ai\.(?:prompt|completion|input|output)/;

/**
 * An item encoded under `full`, to be sent while the user chose metadata_only: the content is taken
 * out (as prepareRecord would have), so content recorded earlier never leaves. Undefined if unreadable.
 */
function withoutContent(wire: Wire, item: Item): Buffer | undefined {
	try {
		const value = JSON.parse(itemBuffer(item).toString("utf8"));
		if (wire === "otel") {
			const attributes: { key: string; value: Record<string, unknown> }[] = value.attributes ?? [];
			const type = attributes.find(a => a.key === "langfuse.observation.type")?.value.stringValue;
			const isTool = type === "tool";
			// a prompt's name is its text: the name metadata_only would have given it instead
			const isPrompt = type === "agent" || type === "chain";
			value.attributes = attributes
				.filter(a => !CONTENT_ATTRIBUTE.test(a.key))
				.map(a =>
					isTool && a.key === "langfuse.observation.status_message"
						? { key: a.key, value: { stringValue: "tool failed" } }
						: a.key === "langfuse.trace.name"
							? { key: a.key, value: { stringValue: "prompt" } }
							: a,
				);
			if (isPrompt) value.name = "prompt";
			if (isTool && value.status?.message) value.status.message = "tool failed";
		} else if (value.body && typeof value.body === "object") {
			delete value.body.input;
			delete value.body.output;
			if (value.type === "trace-create" || ["agent", "chain"].includes(value.body.metadata?.observationType)) value.body.name = "prompt";
			if (value.body.metadata?.observationType === "tool" && value.body.statusMessage) value.body.statusMessage = "tool failed";
		}
		return Buffer.from(JSON.stringify(value));
	} catch {
		return undefined;
	}
}

/** An OTLP span as legacy ingestion events (a server without OTLP, batches encoded before we knew). */
function ingestionFromSpan(item: Item): Buffer[] | undefined {
	try {
		const span = JSON.parse(itemBuffer(item).toString("utf8"));
		const attrs: Record<string, unknown> = {};
		for (const { key, value } of span.attributes ?? []) {
			attrs[key] = value.stringValue ?? value.boolValue ?? value.doubleValue ?? (value.intValue !== undefined ? Number(value.intValue) : value.arrayValue?.values?.map((v: { stringValue?: string }) => v.stringValue));
		}
		const text = (key: string) => (typeof attrs[key] === "string" ? (attrs[key] as string) : undefined);
		const parsed = (key: string): any => {
			const raw = text(key);
			if (raw === undefined) return undefined;
			try {
				return JSON.parse(raw);
			} catch {
				return raw;
			}
		};
		const ms = (nanos: unknown) => Number(String(nanos).slice(0, -6));
		const completion = parsed("langfuse.observation.completion_start_time");
		const record: ObservationRecord = {
			traceId: span.traceId,
			id: span.spanId,
			parentId: span.parentSpanId,
			type: (text("langfuse.observation.type") ?? "span") as ObservationType,
			name: String(span.name),
			startMs: ms(span.startTimeUnixNano),
			endMs: ms(span.endTimeUnixNano),
			input: parsed("langfuse.observation.input"),
			output: parsed("langfuse.observation.output"),
			metadata: parsed("langfuse.observation.metadata"),
			level: text("langfuse.observation.level") as Level | undefined,
			statusMessage: text("langfuse.observation.status_message"),
			model: text("langfuse.observation.model.name"),
			modelParameters: parsed("langfuse.observation.model.parameters"),
			usage: parsed("langfuse.observation.usage_details"),
			cost: parsed("langfuse.observation.cost_details"),
			completionStartMs: typeof completion === "string" ? Date.parse(completion) : undefined,
			sessionId: text("session.id") ?? "",
			userId: text("user.id"),
			environment: text("langfuse.environment"),
			release: text("langfuse.release"),
			trace:
				text("langfuse.trace.name") === undefined
					? undefined
					: {
							name: text("langfuse.trace.name")!,
							input: parsed("langfuse.trace.input"),
							output: parsed("langfuse.trace.output"),
							tags: Array.isArray(attrs["langfuse.trace.tags"]) ? (attrs["langfuse.trace.tags"] as string[]) : [],
							metadata: parsed("langfuse.trace.metadata") ?? {},
						},
			// stable across replays, unique per emission: the same span sent twice is folded by Langfuse
			emissionId: `${span.spanId}-${span.endTimeUnixNano}`,
		};
		return ingestionEvents(record).map(event => Buffer.from(JSON.stringify(event)));
	} catch {
		return undefined;
	}
}

// ── the spool: files, names, claims, locks ──────────────────────────────────────────────────────

/**
 * A lock file holding its owner's pid, for work one process at a time may do (spool replay, reading
 * one Codex rollout). A lock whose owner is dead, or older than `staleMs`, is taken over. Returns the
 * release, or undefined while someone else holds it.
 */
function tryLock(file: string, staleMs: number): (() => void) | undefined {
	const release = () => fs.rmSync(file, { force: true });
	for (let attempt = 0; attempt < 2; attempt++) {
		try {
			fs.writeFileSync(file, String(process.pid), { flag: "wx", mode: 0o600 });
			return release;
		} catch (error) {
			if ((error as NodeJS.ErrnoException).code !== "EEXIST") return undefined;
		}
		try {
			const owner = Number(fs.readFileSync(file, "utf8"));
			if (owner > 0 && isAlive(owner) && Date.now() - fs.statSync(file).mtimeMs < staleMs) return undefined;
			fs.rmSync(file, { force: true });
		} catch {
			// released meanwhile: try once more
		}
	}
	return undefined; // another process took it over first
}

/** tryLock, waiting up to `waitMs` for the holder to finish. */
async function waitForLock(file: string, staleMs: number, waitMs: number): Promise<(() => void) | undefined> {
	const until = Date.now() + waitMs;
	for (;;) {
		const release = tryLock(file, staleMs);
		if (release || Date.now() >= until) return release;
		await new Promise(resolve => setTimeout(resolve, 25));
	}
}

/** What one spool file holds: encoded items under a header, or (langfuse.ts 0.1) raw records. */
type SpoolContent = { header: BatchHeader; items: Item[] } | { legacy: ObservationRecord[] };

/**
 * Batches on disk in a 0700 directory as 0600 files: a header line, then one encoded item per line,
 * byte for byte what is sent. Claims are renames (`.<pid>` appended), so two processes never send the
 * same file; a process claims only files of its own destination. The spool alone knows its names.
 */
class Spool {
	private usable = false;
	private bytes = 0;
	/** Files this process claimed and has neither removed nor given back: released at exit. */
	private readonly held = new Set<string>();
	private static sequence = 0;
	/** Told which of this process's files the size cap removed. */
	onCapped?: (file: string) => void;

	constructor(
		readonly dir: string,
		readonly destination: Destination,
		private readonly maxBytes: number,
		private readonly retentionMs: number,
		private readonly log: Logger,
	) {
		try {
			fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
			fs.chmodSync(dir, 0o700);
			this.usable = true;
		} catch (error) {
			log.warnOnce("spool-dir", `spool directory ${dir} is not writable (${errorText(error)}); unsent data is kept in memory only`);
		}
	}

	/** A spool file name's parts: its destination key ("" before 0.2) and owner pid (0 = nobody). */
	static parse(name: string): { destination: string; owner: number } | undefined {
		const match = SPOOL_NAME.exec(name);
		return match ? { destination: match[1] ?? "", owner: Number(match[2] ?? 0) } : undefined;
	}

	get available(): boolean {
		return this.usable;
	}

	header(wire: Wire, mode: ExportMode): BatchHeader {
		return { v: 2, wire, mode, host: this.destination.host, publicKey: this.destination.publicKey };
	}

	private static data(header: BatchHeader | undefined, items: Item[]): Buffer {
		const head = Buffer.from(header ? `${JSON.stringify(header)}\n` : "");
		const data = Buffer.allocUnsafe(head.length + itemsBytes(items));
		let at = head.copy(data, 0);
		for (const item of items) {
			at += copyItem(item, data, at);
			data[at++] = NEWLINE;
		}
		return data;
	}

	/**
	 * Writes a batch, already claimed by this process; returns its path. The writes run off the main
	 * thread, in chunks of ≤ 1 MB copied between them, so no step holds the event loop.
	 */
	async write(header: BatchHeader, items: Item[], file?: string): Promise<string | undefined> {
		if (!this.usable) return undefined;
		const target = file ?? path.join(this.dir, `${this.newName()}.${process.pid}`);
		const temporary = path.join(this.dir, `.${path.basename(target)}.tmp`);
		let size = 0;
		try {
			const handle = await fsp.open(temporary, "w", 0o600);
			try {
				for (let start = 0; start < items.length || start === 0; ) {
					let end = start;
					let bytes = 0;
					while (end < items.length && (end === start || bytes + items[end]!.length < 1 << 20)) bytes += items[end++]!.length + 1;
					const chunk = Spool.data(start === 0 ? header : undefined, items.slice(start, end));
					await handle.write(chunk, 0, chunk.length);
					size += chunk.length;
					if (end >= items.length) break;
					start = end;
				}
			} finally {
				await handle.close();
			}
			await fsp.rename(temporary, target);
			this.held.add(target);
			this.bytes += size;
			if (this.bytes > this.maxBytes) await this.enforceCap();
			return target;
		} catch (error) {
			this.log.warnOnce("spool-write", `could not write the spool (${errorText(error)}); unsent data is kept in memory only`);
			fsp.rm(temporary, { force: true }).catch(() => {});
			return undefined;
		}
	}

	/** At process exit only synchronous work runs: leave what is unsent for the next process. */
	writeSync(header: BatchHeader, items: Item[]): void {
		if (!this.usable || items.length === 0) return;
		const file = path.join(this.dir, this.newName());
		const temporary = path.join(this.dir, `.${path.basename(file)}.tmp`);
		try {
			fs.writeFileSync(temporary, Spool.data(header, items), { mode: 0o600 });
			fs.renameSync(temporary, file);
		} catch {
			// the process is going away; nothing sensible is left to do
		}
	}

	/** Reads a batch; a truncated or corrupt line (a broken disk) is skipped alone. */
	async read(file: string): Promise<SpoolContent | undefined> {
		let data: Buffer;
		try {
			data = await fsp.readFile(file);
		} catch {
			return undefined;
		}
		const lines: Buffer[] = [];
		for (let start = 0; start < data.length; ) {
			let end = data.indexOf(NEWLINE, start);
			if (end < 0) end = data.length;
			if (end > start) lines.push(data.subarray(start, end));
			start = end + 1;
		}
		let header: BatchHeader | undefined;
		try {
			const first = JSON.parse(lines[0]?.toString("utf8") ?? "");
			if (first?.v === 2 && (first.wire === "otel" || first.wire === "ingestion")) header = first;
		} catch {}
		const wellFormed = (line: Buffer) => line[0] === 0x7b && line[line.length - 1] === 0x7d;
		if (header) {
			const items = lines.slice(1).filter(wellFormed);
			if (items.length < lines.length - 1) this.log.debug(`skipped ${lines.length - 1 - items.length} corrupt line(s) in ${path.basename(file)}`);
			return { header, items };
		}
		const legacy: ObservationRecord[] = [];
		for (const line of lines) {
			try {
				const record = JSON.parse(line.toString("utf8")) as ObservationRecord;
				if (record && typeof record.traceId === "string" && typeof record.id === "string") legacy.push(record);
			} catch {
				this.log.debug(`skipped a corrupt line in ${path.basename(file)}`);
			}
		}
		return { legacy };
	}

	async remove(file: string): Promise<void> {
		this.held.delete(file);
		try {
			const { size } = await fsp.stat(file);
			await fsp.rm(file, { force: true });
			this.bytes = Math.max(0, this.bytes - size);
		} catch {
			// already gone
		}
	}

	/** Gives a claimed file back, so another process may send it (used at exit). */
	releaseSync(file: string): void {
		this.held.delete(file);
		const released = file.replace(/\.\d+$/, "");
		if (released === file) return;
		try {
			fs.renameSync(file, released);
		} catch {
			// gone already
		}
	}

	/** Gives back every file this process still holds (at exit), including claims still in flight. */
	releaseAllSync(): void {
		for (const file of [...this.held]) this.releaseSync(file);
	}

	/**
	 * Claims every batch of this destination that nobody alive owns, oldest first, and removes files
	 * (of any destination) past retention. One replayer per destination at a time, so a trace's later
	 * version never reaches Langfuse before its earlier one. `legacy`: also files written before 0.2
	 * (no destination recorded) — only the `flush` command, run by the user with their keys, sends those.
	 */
	async claimOrphans(options: { legacy?: boolean } = {}): Promise<string[]> {
		const release = this.usable ? tryLock(path.join(this.dir, `.replay.${this.destination.key}.lock`), 60_000) : undefined;
		if (!release) return [];
		try {
			const now = Date.now();
			const claimed: string[] = [];
			for (const entry of await this.entries()) {
				if (now - entry.mtimeMs > this.retentionMs) {
					this.log.debug(`removing ${entry.name}: older than LANGFUSE_RETENTION_DAYS`);
					await fsp.rm(entry.file, { force: true }).catch(() => {});
					continue;
				}
				const { destination, owner } = Spool.parse(entry.name)!;
				if (destination !== this.destination.key && !(options.legacy && destination === "")) continue;
				if (owner && (owner === process.pid || isAlive(owner))) continue;
				const target = path.join(this.dir, `${entry.name.replace(/\.\d+$/, "")}.${process.pid}`);
				try {
					await fsp.rename(entry.file, target);
					claimed.push(target);
					this.held.add(target);
				} catch {
					// another process claimed it first
				}
			}
			this.bytes = (await this.entries()).reduce((sum, entry) => sum + entry.size, 0);
			return claimed;
		} finally {
			release();
		}
	}

	/** Files another live process has claimed: it is sending them. */
	heldByOthers(): number {
		try {
			return fs.readdirSync(this.dir).filter(name => {
				const parsed = Spool.parse(name);
				const mine = parsed?.destination === this.destination.key || parsed?.destination === "";
				return mine && parsed!.owner > 0 && parsed!.owner !== process.pid && isAlive(parsed!.owner);
			}).length;
		} catch {
			return 0;
		}
	}

	/** Spool contents for status lines: files, bytes, age of the oldest; `mine`: this destination (and 0.1 files) only. */
	async stats(options: { mine?: boolean } = {}): Promise<{ files: number; bytes: number; oldestMs?: number }> {
		const entries = (await this.entries()).filter(entry => !options.mine || [this.destination.key, ""].includes(Spool.parse(entry.name)!.destination));
		return {
			files: entries.length,
			bytes: entries.reduce((sum, entry) => sum + entry.size, 0),
			oldestMs: entries.length ? Date.now() - Math.min(...entries.map(entry => entry.mtimeMs)) : undefined,
		};
	}

	/** Batches waiting for other destinations, with the host and public key their header names. */
	async others(): Promise<{ host: string; publicKey: string; files: number }[]> {
		const found = new Map<string, { host: string; publicKey: string; files: number }>();
		for (const entry of await this.entries()) {
			const key = Spool.parse(entry.name)!.destination;
			if (!key || key === this.destination.key) continue;
			const known = found.get(key);
			if (known) {
				known.files++;
				continue;
			}
			let header: Partial<BatchHeader> = {};
			try {
				const handle = await fsp.open(entry.file, "r");
				try {
					const { buffer, bytesRead } = await handle.read(Buffer.alloc(4096), 0, 4096, 0);
					header = JSON.parse(buffer.subarray(0, bytesRead).toString("utf8").split("\n", 1)[0]!);
				} finally {
					await handle.close();
				}
			} catch {}
			found.set(key, { host: String(header.host ?? "?"), publicKey: String(header.publicKey ?? "?"), files: 1 });
		}
		return [...found.values()];
	}

	/** Names sort by age: milliseconds, then this process's sequence number. */
	private newName(): string {
		const sequence = (Spool.sequence++).toString(16).padStart(8, "0");
		return `${Date.now().toString().padStart(14, "0")}-${process.pid}-${sequence}${randomUUID().slice(0, 4)}.${this.destination.key}.jsonl`;
	}

	private async entries(): Promise<{ name: string; file: string; size: number; mtimeMs: number }[]> {
		let names: string[];
		try {
			names = await fsp.readdir(this.dir);
		} catch {
			return [];
		}
		const entries = [];
		for (const name of names.filter(name => Spool.parse(name)).sort()) {
			const file = path.join(this.dir, name);
			try {
				const stat = await fsp.stat(file);
				entries.push({ name, file, size: stat.size, mtimeMs: stat.mtimeMs });
			} catch {
				// vanished meanwhile
			}
		}
		return entries;
	}

	/** Over LANGFUSE_MAX_SPOOL_MB the oldest batches go first, with one warning. */
	private async enforceCap(): Promise<void> {
		const entries = await this.entries();
		let total = entries.reduce((sum, entry) => sum + entry.size, 0);
		let dropped = 0;
		for (const entry of entries) {
			if (total <= this.maxBytes * 0.9) break;
			await fsp.rm(entry.file, { force: true }).catch(() => {});
			if (this.held.delete(entry.file)) this.onCapped?.(entry.file);
			total -= entry.size;
			dropped++;
		}
		this.bytes = total;
		if (dropped) this.log.warnOnce("spool-cap", `spool over LANGFUSE_MAX_SPOOL_MB: dropped the ${dropped} oldest batch file(s)`);
	}
}

function isAlive(pid: number): boolean {
	try {
		process.kill(pid, 0);
		return true;
	} catch (error) {
		return (error as NodeJS.ErrnoException).code === "EPERM";
	}
}

// ── the exporter ─────────────────────────────────────────────────────────────────────────────────

/** One flush's worth of encoded items, in memory and/or in one spool file. */
interface Batch {
	header: BatchHeader;
	/** Items not yet confirmed; undefined while only on disk (read back when it is next to send). */
	items?: Item[];
	file?: string;
	/** none → scheduled → writing → written (or failed: memory only). A batch done first is never written. */
	write: "none" | "scheduled" | "writing" | "written" | "failed";
	writeTimer?: ReturnType<typeof setTimeout>;
	writing?: Promise<void>;
	/** The file still lists items Langfuse has confirmed since (rewritten when the batch fails). */
	stale?: boolean;
	/** Legacy (0.1) records read from disk, encoded when the batch is next. */
	legacy?: ObservationRecord[];
	done?: boolean;
	/** How many items the file holds while they are not in memory. */
	count?: number;
	attempts: number;
	notBefore: number;
}

/** What one request's answer means. */
type PostOutcome =
	| { kind: "ok" }
	| { kind: "retry"; reason: string; afterMs?: number }
	| { kind: "blocked"; reason: string }
	| { kind: "switch" }
	/** 400: some item is bad; 413: too large. Both are split to find what can go. */
	| { kind: "split"; status: 400 | 413; reason: string }
	/** Not sent: compressed, the body came out over MAX_REQUEST_BYTES (or must go plain and is too big for that). */
	| { kind: "too-large" }
	/** Ingestion 207: these event ids failed and may be retried; `dropped` others were rejected. */
	| { kind: "some-failed"; failedIds: string[]; dropped: number; reason: string };

/** Why a batch stopped before all of it was confirmed (a deadline is no failure). */
type StopOutcome = Extract<PostOutcome, { kind: "retry" | "blocked" | "switch" }> | { kind: "deadline" };

interface ExporterStatus {
	queued: number;
	waitingBatches: number;
	sentSpans: number;
	droppedSpans: number;
	lastError?: string;
	blocked?: string;
	transport: "otel" | "ingestion";
}

type FetchLike = (url: string, init: RequestInit) => Promise<Response>;

/** What the exporter does to the outside world; tests swap these. */
interface ExporterIo {
	fetch?: FetchLike;
	backoffMs?: (attempt: number) => number;
}

/**
 * The queue and the sender: one per process, shared by every session and every copy of the module.
 *
 * State machine (all mutable state is in `state`; one loop, `run`, does all work):
 *   idle       queue fills from hooks (enqueue: O(1)); flush() only schedules — it yields first, so no
 *              hook runs any of it inline.
 *   encoding   the loop takes the queue as it is when the run starts (what arrives while it sends waits
 *              for the next flush: the timer, a prompt's end, a full queue), keeps the latest version of
 *              each span, and encodes it in slices of ≤ SLICE_MS with a yield between, into batches of
 *              about one request; a batch's spool write is due SPOOL_WRITE_DELAY_MS later (at once when
 *              it cannot be sent now).
 *   sending    each batch goes out before the next is encoded, request by request (gzip off the main
 *              thread, under MAX_REQUEST_BYTES on the wire); confirmed items leave the batch, so a retry
 *              resends only what is unconfirmed. Done → file removed.
 *   waiting    the oldest batch failed: it (and everything behind it) waits for `notBefore`; the timer
 *              tries again. The loop ends; a later flush() starts it again.
 *   blocked    401/403, a redirect, no OTLP: nothing more is sent by this process; all is written and kept.
 * flush()/replay() only add work and join `run`; shutdown() sends until most of its budget is gone,
 * then writes what is unconfirmed;
 * exitSync() writes whatever is not on disk yet, synchronously.
 */
class Exporter {
	private readonly state = {
		queue: [] as ObservationRecord[],
		/** Records taken from the queue and still being encoded (exitSync saves them). */
		encoding: undefined as ObservationRecord[] | undefined,
		/** Oldest first; only the first is ever being sent. */
		batches: [] as Batch[],
		/** The one work loop, while it runs; its deadline is the earliest any caller asked for. */
		run: undefined as Promise<void> | undefined,
		deadline: Number.POSITIVE_INFINITY,
		wire: "otel" as Wire,
		/** False once the host refused a gzip body (remembered per host). */
		gzip: true,
		timer: undefined as ReturnType<typeof setInterval> | undefined,
		soon: undefined as ReturnType<typeof setTimeout> | undefined,
		/** The prompt-end send, while it waits out PROMPT_SEND_GAP_MS. */
		promptSend: undefined as ReturnType<typeof setTimeout> | undefined,
		/** When the last request went out (Date.now()). */
		lastPostAt: 0,
		/** Compressed size over plain size at the last gzip request: how many spans the next one can carry (JSON: ~0.05–0.2). */
		gzipRatio: 0.1,
		/** Records ever enqueued, and ever taken from the queue to encode: a flush waits for those queued before it. */
		enqueued: 0,
		taken: 0,
	};
	private readonly listeners = new Set<() => void>();
	readonly spool: Spool;
	readonly status: ExporterStatus;
	private readonly prepareOptions: PrepareOptions;
	/** How long a new batch waits for Langfuse before it is written (a quarter of the interval at most). */
	private readonly writeDelayMs: number;

	constructor(
		readonly config: Config,
		private readonly redact: Redactor,
		private readonly log: Logger,
		private readonly io: ExporterIo = {},
	) {
		this.writeDelayMs = Math.min(SPOOL_WRITE_DELAY_MS, Math.floor(config.flushMs / 4));
		this.spool = new Spool(config.spoolDir, destinationOf(config), config.maxSpoolBytes, config.retentionDays * 86_400_000, log);
		const remembered = this.remembered();
		this.state.wire = config.transport === "ingestion" ? "ingestion" : config.transport === "auto" && remembered.transport === "ingestion" ? "ingestion" : "otel";
		this.state.gzip = remembered.gzip !== false;
		// the cap removed a batch file of ours: still in memory, it stays (memory only); else it is gone, counted
		this.spool.onCapped = file => {
			const batch = this.state.batches.find(candidate => candidate.file === file);
			if (!batch) return;
			batch.file = undefined;
			batch.write = "failed";
			if (batch.items) return;
			this.state.batches.splice(this.state.batches.indexOf(batch), 1);
			batch.done = true;
			this.status.droppedSpans += batch.count ?? 0;
			this.notify();
		};
		this.status = { queued: 0, waitingBatches: 0, sentSpans: 0, droppedSpans: 0, transport: this.state.wire };
		this.prepareOptions = {
			redact,
			maxFieldChars: config.maxFieldChars,
			budgetChars: Math.max(config.maxFieldChars * 16, 1_000_000),
			exportMode: config.exportMode,
			chatCache: new ChatCache(),
			texts: new SanitizedTexts(),
		};
	}

	/** Starts the flush timer and (unless told not to) picks up what earlier processes left in the spool. */
	start(options: { replaySpool?: boolean } = {}): void {
		if (this.state.timer) return;
		this.state.timer = setInterval(() => void this.flush(), this.config.flushMs - this.writeDelayMs);
		this.state.timer.unref?.();
		if (options.replaySpool === false) return;
		const replay = setTimeout(() => void this.sendSpool(Number.POSITIVE_INFINITY).catch(error => this.log.debug(`spool replay failed: ${errorText(error)}`)), 0);
		replay.unref?.();
	}

	stop(): void {
		clearInterval(this.state.timer);
		clearTimeout(this.state.soon);
		clearTimeout(this.state.promptSend);
		this.state.timer = undefined;
	}

	onChange(listener: () => void): () => void {
		this.listeners.add(listener);
		return () => this.listeners.delete(listener);
	}

	/** Hooks call this: O(1), never throws, never waits. */
	enqueue(record: ObservationRecord): void {
		const { state } = this;
		state.queue.push(record);
		state.enqueued++;
		this.status.queued = state.queue.length;
		if (state.queue.length >= this.config.maxQueue && !state.soon) {
			state.soon = setTimeout(() => {
				state.soon = undefined;
				void this.flush();
			}, 0);
			state.soon.unref?.();
		}
	}

	/**
	 * A prompt ended (adapters call this from the hook): send what is queued after the hook has returned
	 * (O(1) here, the exporter's work never runs inside a hook the host awaits), sharing a request with
	 * prompts that end right after it.
	 */
	sendSoon(): void {
		const { state } = this;
		if (state.promptSend) return;
		const gapMs = Math.min(PROMPT_SEND_GAP_MS, this.config.flushMs);
		state.promptSend = setTimeout(() => {
			state.promptSend = undefined;
			void this.flush();
		}, Math.max(0, state.lastPostAt + gapMs - Date.now()));
		state.promptSend.unref?.();
	}

	/**
	 * Encodes what is queued, then sends what is due; resolves by `deadline` at the latest. Does nothing
	 * before its first yield: a hook that calls it returns at once, the work runs in slices afterwards.
	 */
	async flush(deadline = Number.POSITIVE_INFINITY): Promise<void> {
		await yieldToLoop();
		const { state } = this;
		const queuedBefore = state.enqueued;
		try {
			state.deadline = Math.min(state.deadline, deadline);
			for (;;) {
				state.run ??= this.loop().finally(() => {
					state.run = undefined;
					state.deadline = Number.POSITIVE_INFINITY;
				});
				await state.run;
				// A run encodes the queue once: what arrived while it was sending waits for the next flush (so a
				// busy session is a few large requests, not one per event). A caller whose records came too late
				// for the run it joined gets a run of its own; a batch left due (a spool replay) goes too.
				const head = state.batches[0];
				const due = head && head.attempts === 0 && !this.status.blocked && head.notBefore <= Date.now();
				if (!(state.taken < queuedBefore || due) || Date.now() >= deadline - 50) return;
				state.deadline = Math.min(state.deadline, deadline);
			}
		} catch (error) {
			this.log.debug(`flush failed: ${errorText(error)}`);
		}
	}

	/** Final flush within the host's budget; whatever is not confirmed is on disk when it resolves. */
	async shutdown(budgetMs = SHUTDOWN_BUDGET_MS): Promise<void> {
		const deadline = Date.now() + budgetMs;
		let timer: ReturnType<typeof setTimeout> | undefined;
		const timeout = new Promise<void>(resolve => {
			timer = setTimeout(resolve, budgetMs);
			timer.unref?.();
		});
		// Sending gets the budget but its last quarter, then whatever Langfuse has not confirmed is written.
		// A batch confirmed in time never touches the disk; on exit, exitSync writes what this did not.
		await Promise.race([this.flush(deadline - Math.floor(budgetMs / 4)).then(() => this.writeAll()), timeout]);
		clearTimeout(timer);
	}

	/** process 'exit': only synchronous work is possible. Hand everything unsent to the next process. */
	exitSync(): void {
		const { state } = this;
		for (const batch of state.batches) {
			clearTimeout(batch.writeTimer);
			// A write under way may or may not land: writing again costs a duplicate at most, which
			// Langfuse folds (same span and event ids); not writing could lose it.
			if (!batch.done && batch.items?.length && batch.write !== "written") this.spool.writeSync(batch.header, batch.items);
		}
		state.taken = state.enqueued;
		const records = [...(state.encoding ?? []), ...state.queue.splice(0)];
		state.encoding = undefined;
		const items = latestVersions(records).flatMap(record => this.encode(record, state.wire) ?? []);
		this.spool.writeSync(this.spool.header(state.wire, this.config.exportMode), items);
		this.spool.releaseAllSync();
		state.batches = [];
	}

	/** Claims this destination's spooled batches no live process owns and sends them (at start, and `flush`); returns how many. */
	async sendSpool(deadline: number, options: { legacy?: boolean } = {}): Promise<number> {
		const files = await this.spool.claimOrphans(options);
		if (files.length === 0) return 0;
		this.log.debug(`replaying ${files.length} spooled batch(es) from earlier runs`);
		const claimed: Batch[] = files.map(file => ({ header: this.spool.header(this.state.wire, "full"), file, write: "written", attempts: 0, notBefore: 0 }));
		this.state.batches.unshift(...claimed);
		this.notify();
		await this.flush(deadline);
		return files.length;
	}

	private notify(): void {
		this.status.queued = this.state.queue.length;
		this.status.waitingBatches = this.state.batches.length;
		this.status.transport = this.state.wire;
		for (const listener of this.listeners) {
			try {
				listener();
			} catch {
				// a status bar that throws must not stop the exporter
			}
		}
	}

	/**
	 * The one work loop. It takes what is queued when it starts (one version per span) and turns it into
	 * batches of about one request each, sending each before it encodes the next, so memory holds one
	 * request's worth at a time. While nothing can be sent (backoff, blocked, past the deadline) it still
	 * encodes all it took: those batches go straight to the spool.
	 */
	private async loop(): Promise<void> {
		const { state } = this;
		const before = state.queue.length;
		state.queue = latestVersions(state.queue);
		state.taken += before - state.queue.length; // older versions of a span: taken, never sent
		let toEncode = state.queue.length;
		let failed = false;
		for (;;) {
			const head = state.batches[0];
			const sendable = head && !failed && !this.status.blocked && head.notBefore <= Date.now() && Date.now() < state.deadline - 50;
			if (sendable) {
				const attempts = head.attempts;
				await this.sendBatch(head);
				// a failed batch waits for its backoff and the timer, not for this run
				failed = state.batches[0] === head && head.attempts > attempts;
				continue;
			}
			if (toEncode <= 0 || state.queue.length === 0) return;
			toEncode -= await this.encodeQueue(toEncode);
		}
	}

	/** Sanitizes and encodes a record once; a record too large for a request is shrunk harder, never dropped. */
	private encode(record: ObservationRecord, wire: Wire): Item[] | undefined {
		try {
			let prepared = prepareRecord(record, this.prepareOptions);
			let items = encodeRecord(prepared, wire);
			for (let divisor = 4; items && itemsBytes(items) > MAX_REQUEST_BYTES - 4096 && divisor <= 4096; divisor *= 4) {
				prepared = prepareRecord(record, {
					...this.prepareOptions,
					maxFieldChars: Math.max(1000, Math.floor(this.prepareOptions.maxFieldChars / divisor)),
					budgetChars: Math.floor(this.prepareOptions.budgetChars / divisor),
				});
				prepared.metadata = { ...prepared.metadata, truncated: `shrunk to fit a ${formatBytes(MAX_REQUEST_BYTES)} request` };
				items = encodeRecord(prepared, wire);
			}
			return items;
		} catch {
			return undefined;
		}
	}

	/**
	 * The queue's first records (at most `limit`) → one batch of about one request, in slices of ≤ SLICE_MS
	 * of work with a yield between. Returns how many records it took.
	 */
	private async encodeQueue(limit: number): Promise<number> {
		const { state } = this;
		const wire = state.wire;
		const records: ObservationRecord[] = [];
		state.encoding = records;
		const items: Item[] = [];
		let bytes = 0;
		let unencodable = 0;
		let sliceEnd = performance.now() + SLICE_MS;
		const batchBytes = this.requestLimit(wire);
		while (records.length < limit && bytes < batchBytes && state.queue.length > 0) {
			const record = state.queue.shift()!;
			records.push(record);
			state.taken++;
			const encoded = this.encode(record, wire);
			if (encoded) {
				for (const item of encoded) {
					items.push(item);
					bytes += item.length + 1;
				}
			} else unencodable++;
			if (performance.now() >= sliceEnd) {
				await yieldToLoop();
				if (state.encoding !== records) return records.length; // exitSync saved them meanwhile
				sliceEnd = performance.now() + SLICE_MS;
			}
		}
		state.encoding = undefined;
		if (unencodable) this.dropped(unencodable, "could not be encoded (bad values)");
		if (items.length === 0) {
			this.notify();
			return records.length;
		}
		const batch: Batch = { header: this.spool.header(wire, this.config.exportMode), items, write: "none", attempts: 0, notBefore: 0 };
		state.batches.push(batch);
		this.log.debug(`queued ${records.length} observation(s) as ${items.length} item(s), ${formatBytes(bytes)}`);
		this.capMemory();
		this.notify();
		// nothing will confirm it soon: on disk now, before the flush resolves
		const waits = this.status.blocked || state.batches[0]!.attempts > 0;
		if (waits) await this.startWrite(batch);
		else this.scheduleWrite(batch);
		return records.length;
	}

	private scheduleWrite(batch: Batch): void {
		if (batch.write !== "none" || !this.spool.available) return;
		batch.write = "scheduled";
		batch.writeTimer = setTimeout(() => void this.startWrite(batch), this.writeDelayMs);
		batch.writeTimer.unref?.();
	}

	/** Writes the batch's unconfirmed items now (or rewrites its file without the confirmed ones). */
	private startWrite(batch: Batch): Promise<void> {
		clearTimeout(batch.writeTimer);
		if (batch.writing) return batch.writing;
		if (batch.done || !batch.items || !this.spool.available) return Promise.resolve();
		if (batch.write === "written" && !batch.stale) return Promise.resolve();
		const items = batch.items;
		const rewrite = batch.write === "written" ? batch.file : undefined;
		batch.write = "writing";
		batch.stale = false;
		batch.writing = this.spool.write(batch.header, items, rewrite).then(async file => {
			batch.writing = undefined;
			batch.file = file ?? batch.file;
			batch.write = file ? "written" : "failed";
			if (batch.done && file) return this.spool.remove(file); // confirmed while it was being written
			if (batch.items !== items) batch.stale = true; // some were confirmed meanwhile
			this.evict();
		});
		return batch.writing;
	}

	/**
	 * While Langfuse is not taking data (the oldest batch failed, or sending is blocked), batches far from
	 * their turn (past the first MAX_INFLATED_REQUEST_BYTES) are kept on disk only, so memory stays flat
	 * through an outage. A healthy backlog stays in memory too: the spool's size cap may then remove its
	 * files without losing what they hold.
	 */
	private evict(): void {
		const { batches } = this.state;
		if (!this.status.blocked && !(batches[0] && batches[0].attempts > 0)) return;
		let held = 0;
		for (const batch of batches) {
			if (!batch.items) continue;
			held += itemsBytes(batch.items);
			if (held <= MAX_INFLATED_REQUEST_BYTES || batch === batches[0]) continue;
			if (batch.write !== "written" || batch.stale) continue;
			batch.count = batch.items.length;
			batch.items = undefined;
		}
	}

	/** Everything unconfirmed, on disk (shutdown). */
	private async writeAll(): Promise<void> {
		await Promise.all(this.state.batches.map(batch => this.startWrite(batch)));
	}

	/** Without a spool, memory is the only buffer: keep it bounded, oldest out first. */
	private capMemory(): void {
		if (this.spool.available) return;
		const limit = this.config.maxQueue * 20;
		const { batches } = this.state;
		let held = batches.reduce((sum, batch) => sum + (batch.items?.length ?? 0), 0);
		while (held > limit && batches.length > 1) {
			const [dropped] = batches.splice(1, 1);
			held -= dropped!.items?.length ?? 0;
			this.status.droppedSpans += dropped!.items?.length ?? 0;
			this.log.warnOnce("memory-cap", "Langfuse unreachable and no spool: dropping the oldest unsent observations");
		}
	}

	private dropped(count: number, reason: string): void {
		this.status.droppedSpans += count;
		this.log.warnOnce(`drop:${reason}`, `${count} observation(s) ${reason}; dropped, the rest of the batch goes`);
	}

	/** The items of the oldest batch as this process may send them: read back, converted, stripped. */
	private async load(batch: Batch): Promise<Item[]> {
		if (!batch.items && batch.file) {
			const content = await this.spool.read(batch.file);
			if (content && "legacy" in content) {
				batch.header = this.spool.header(this.state.wire, this.config.exportMode);
				batch.items = latestVersions(content.legacy).flatMap(record => encodeRecord(record, batch.header.wire) ?? []);
				batch.stale = true;
			} else {
				if (content) batch.header = content.header;
				// a file gone meanwhile (another process's size cap): what it held is lost, and counted
				else this.status.droppedSpans += batch.count ?? 0;
				batch.items = content?.items ?? [];
			}
		}
		let items = batch.items ?? [];
		// A stricter export mode applies to what was recorded before it, too.
		if (batch.header.mode === "full" && this.config.exportMode !== "full") {
			const wire = batch.header.wire;
			items = await sliced(items, item => withoutContent(wire, item));
			batch.header = { ...batch.header, mode: this.config.exportMode };
			batch.stale = batch.write === "written";
		}
		// A server without OTLP: spans encoded before we knew go as ingestion events.
		if (batch.header.wire === "otel" && this.state.wire === "ingestion") {
			items = await sliced(items, ingestionFromSpan);
			batch.header = { ...batch.header, wire: "ingestion" };
			batch.stale = batch.write === "written";
		}
		batch.items = items;
		return items;
	}

	/** Sends the oldest batch, request by request; confirmed items leave it, the rest waits. */
	private async sendBatch(batch: Batch): Promise<void> {
		const items = await this.load(batch);
		const wire = batch.header.wire;
		const left: Item[] = [];
		let stop: StopOutcome | undefined;
		for (const request of packRequests(wire, items, this.requestLimit(wire))) {
			if (stop) {
				for (const item of request) left.push(item);
				continue;
			}
			const result = await this.deliver(wire, request);
			for (const item of result.left) left.push(item);
			stop = result.stop;
		}
		if (stop?.kind === "switch") {
			if (this.config.transport !== "auto") {
				stop = { kind: "blocked", reason: `${this.config.host} has no OTLP endpoint (HTTP 404; Langfuse older than v3.22?) — set LANGFUSE_TRANSPORT=ingestion or auto` };
			} else {
				this.log.warnOnce("switch", `${this.config.host} has no OTLP endpoint; using the legacy ingestion API from now on`);
				this.state.wire = "ingestion";
				this.remember({ transport: "ingestion" });
				batch.items = left;
				return this.notify(); // the loop sends it again, as ingestion events
			}
		}
		if (left.length < items.length && batch.write === "written") batch.stale = true;
		batch.items = left;
		if (left.length === 0) return this.finish(batch);
		switch (stop?.kind) {
			case "blocked":
				this.status.blocked = this.status.lastError = stop.reason;
				this.log.warnOnce("blocked", `${stop.reason}; tracing keeps spooling to ${this.spool.dir} and sends nothing more from this process`);
				await this.startWrite(batch);
				break;
			case "retry":
				batch.attempts++;
				batch.notBefore = Date.now() + (stop.afterMs ?? (this.io.backoffMs ?? backoffMs)(batch.attempts));
				this.status.lastError = stop.reason;
				this.log.debug(`send failed (${stop.reason}); retry #${batch.attempts} in ${batch.notBefore - Date.now()} ms`);
				await this.startWrite(batch);
				break;
		}
		this.evict();
		this.notify();
	}

	private async finish(batch: Batch): Promise<void> {
		batch.done = true;
		clearTimeout(batch.writeTimer);
		this.state.batches.splice(this.state.batches.indexOf(batch), 1);
		if (!batch.attempts) this.status.lastError = undefined;
		this.notify();
		if (batch.file && !batch.writing) await this.spool.remove(batch.file);
	}

	/**
	 * One request's items to Langfuse. 400 and 413 split the items in halves until what is wrong
	 * stands alone: a single item Langfuse still rejects is dropped, counted and reported.
	 */
	private async deliver(wire: Wire, items: Item[]): Promise<{ left: Item[]; stop?: StopOutcome }> {
		if (Date.now() >= this.state.deadline - 50) return { left: items, stop: { kind: "deadline" } };
		const outcome = await this.post(wire, items);
		switch (outcome.kind) {
			case "ok":
				this.status.sentSpans += items.length;
				this.status.lastError = undefined;
				return { left: [] };
			case "some-failed": {
				const failed = new Set(outcome.failedIds);
				const left = items.filter(item => failed.has(itemKey(item)));
				this.status.sentSpans += items.length - left.length - outcome.dropped;
				if (outcome.dropped) this.dropped(outcome.dropped, `rejected by Langfuse (${outcome.reason})`);
				return { left, stop: left.length ? { kind: "retry", reason: outcome.reason } : undefined };
			}
			case "too-large":
			case "split": {
				if (items.length === 1 && outcome.kind === "split") {
					this.dropped(1, `rejected by Langfuse (${outcome.reason}) — span ${itemKey(items[0]!)}`);
					this.status.lastError = outcome.reason;
					return { left: [] };
				}
				if (items.length === 1) return { left: items, stop: { kind: "retry", reason: "one span too large for a request" } }; // cannot happen: every item fits alone
				const half = Math.ceil(items.length / 2);
				const first = await this.deliver(wire, items.slice(0, half));
				if (first.stop) return { left: [...first.left, ...items.slice(half)], stop: first.stop };
				return this.deliver(wire, items.slice(half));
			}
			default:
				return { left: items, stop: outcome };
		}
	}

	/**
	 * Uncompressed bytes per request: MAX_REQUEST_BYTES, or with gzip as much as compresses to about 70 %
	 * of it at the last request's ratio (never more than MAX_INFLATED_REQUEST_BYTES).
	 */
	private requestLimit(wire: Wire): number {
		if (wire !== "otel" || !this.state.gzip) return MAX_REQUEST_BYTES;
		return Math.max(MAX_REQUEST_BYTES, Math.min(MAX_INFLATED_REQUEST_BYTES, Math.floor((MAX_REQUEST_BYTES * 0.7) / this.state.gzipRatio)));
	}

	/** One POST; gzip-compressed off the main thread, plain again if the server refuses gzip. */
	private async post(wire: Wire, items: Item[]): Promise<PostOutcome> {
		const pathname = wire === "otel" ? OTLP_PATH : INGESTION_PATH;
		const gzip = this.state.gzip && wire === "otel";
		const plainBytes = requestBytes(wire, items);
		const started = (this.state.lastPostAt = Date.now());
		const send = (payload: Buffer, compressed: boolean) =>
			httpRequest(this.config, pathname, {
				body: payload,
				headers: compressed ? { "Content-Encoding": "gzip" } : undefined,
				deadline: this.state.deadline,
				fetch: this.io.fetch,
			});
		let payload: Buffer;
		if (gzip) {
			payload = await gzipBody(wire, items);
			this.state.gzipRatio = Math.max(0.01, payload.length / plainBytes);
			if (payload.length > MAX_REQUEST_BYTES && items.length > 1) {
				this.log.debug(`${items.length} item(s) compress to ${formatBytes(payload.length)}, over ${formatBytes(MAX_REQUEST_BYTES)}: split`);
				return { kind: "too-large" };
			}
		} else {
			// sized for gzip before gzip was refused: halves until each fits a plain request
			if (plainBytes > MAX_REQUEST_BYTES && items.length > 1) return { kind: "too-large" };
			payload = requestBody(wire, items);
		}
		let answer = await send(payload, gzip);
		if (gzip && (answer.status === 415 || answer.status === 400)) {
			// the same items plain tell a refused gzip from a bad item; too many for one plain request: halves first
			if (plainBytes > MAX_REQUEST_BYTES) return { kind: "too-large" };
			const plain = await send(requestBody(wire, items), false);
			if (plain.status !== answer.status) {
				this.log.warnOnce("gzip", `${this.config.host} refused a gzip body (HTTP ${answer.status}); sending uncompressed from now on`);
				this.state.gzip = false;
				this.remember({ gzip: false });
			}
			answer = plain;
		}
		const outcome: PostOutcome = answer.status === 0 ? { kind: "retry", reason: answer.error ?? "no answer" } : interpretResponse(wire, answer, this.config);
		this.log.debug(`POST ${wire} ${items.length} item(s), ${plainBytes} bytes${gzip && this.state.gzip ? ` (${payload.length} gzip)` : ""} → ${describeOutcome(outcome)} in ${Date.now() - started} ms`);
		return outcome;
	}

	/** What this host taught an earlier process: no OTLP endpoint, no gzip. Per host, in the spool dir. */
	private remembered(): { transport?: Wire; gzip?: boolean } {
		try {
			const saved = JSON.parse(fs.readFileSync(path.join(this.config.spoolDir, "transport.json"), "utf8"));
			return { transport: saved?.[this.config.host] === "ingestion" ? "ingestion" : undefined, gzip: saved?.[`${this.config.host} gzip`] === false ? false : undefined };
		} catch {
			return {};
		}
	}

	private remember(facts: { transport?: Wire; gzip?: boolean }): void {
		const file = path.join(this.config.spoolDir, "transport.json");
		try {
			let saved: Record<string, unknown> = {};
			try {
				saved = JSON.parse(fs.readFileSync(file, "utf8"));
			} catch {}
			if (facts.transport) saved[this.config.host] = facts.transport;
			if (facts.gzip !== undefined) saved[`${this.config.host} gzip`] = facts.gzip;
			fs.writeFileSync(file, JSON.stringify(saved), { mode: 0o600 });
		} catch {
			// remembered for this process only
		}
	}
}

/** One version per span, the latest (a later emission is a superset of an earlier one), in first-seen order. */
function latestVersions(records: ObservationRecord[]): ObservationRecord[] {
	const latest = new Map<string, ObservationRecord>();
	for (const record of records) latest.set(`${record?.traceId}:${record?.id}`, record);
	return latest.size === records.length ? records : [...latest.values()];
}

const OTLP_PATH = "/api/public/otel/v1/traces";
const INGESTION_PATH = "/api/public/ingestion";
/** Langfuse's answers are small JSON; a larger body (a proxy's page, a hostile server) is cut here. */
const MAX_RESPONSE_BYTES = 64 * 1024;

/** One exchange with Langfuse: status 0 means no answer (network error, timeout), with the reason. */
interface HttpAnswer {
	status: number;
	text: string;
	location?: string;
	retryAfter?: string | null;
	error?: string;
}

/**
 * Every request to Langfuse goes through here: Basic auth (unless `anonymous`), aborted after
 * REQUEST_TIMEOUT_MS or at the deadline, redirects never followed, at most MAX_RESPONSE_BYTES read.
 * OTLP requests name the ingestion version Langfuse should apply (4: observations written directly).
 */
async function httpRequest(
	config: Config,
	pathname: string,
	options: { body?: string | Uint8Array; headers?: Record<string, string>; deadline?: number; anonymous?: boolean; fetch?: FetchLike } = {},
): Promise<HttpAnswer> {
	const controller = new AbortController();
	const timeoutMs = Math.max(1, Math.min(REQUEST_TIMEOUT_MS, (options.deadline ?? Number.POSITIVE_INFINITY) - Date.now()));
	const timer = setTimeout(() => controller.abort(), timeoutMs);
	timer.unref?.();
	const headers: Record<string, string> = { "User-Agent": `langfuse.ts/${VERSION}`, ...options.headers };
	if (!options.anonymous) headers.Authorization = basicAuth(config);
	if (options.body !== undefined) headers["Content-Type"] = "application/json";
	if (pathname === OTLP_PATH) headers["x-langfuse-ingestion-version"] = "4";
	try {
		const response = await (options.fetch ?? fetch)(`${config.host}${pathname}`, {
			method: options.body === undefined ? "GET" : "POST",
			headers,
			body: options.body as BodyInit | undefined,
			redirect: "manual",
			signal: controller.signal,
		});
		return {
			status: response.status,
			text: await readBounded(response, MAX_RESPONSE_BYTES),
			location: response.headers.get("location") ?? undefined,
			retryAfter: response.headers.get("retry-after"),
		};
	} catch (error) {
		return { status: 0, text: "", error: controller.signal.aborted ? "timed out" : `network error: ${errorText(error)}` };
	} finally {
		clearTimeout(timer);
	}
}

/** The first `maxBytes` of a response body; the rest is never read (the stream is cancelled). */
async function readBounded(response: Response, maxBytes: number): Promise<string> {
	const reader = response.body?.getReader();
	if (!reader) return "";
	const chunks: Uint8Array[] = [];
	let size = 0;
	try {
		while (size < maxBytes) {
			const { done, value } = await reader.read();
			if (done) break;
			chunks.push(value);
			size += value.byteLength;
		}
	} catch {
		// a body that breaks off mid-way: what arrived is all there is
	} finally {
		reader.cancel().catch(() => {});
	}
	return Buffer.concat(chunks).subarray(0, maxBytes).toString("utf8");
}

function basicAuth(config: Config): string {
	return `Basic ${Buffer.from(`${config.publicKey}:${config.secretKey}`).toString("base64")}`;
}

/** Exponential backoff with jitter: 1 s, 2 s, 4 s … capped at 60 s. */
function backoffMs(attempt: number): number {
	const base = Math.min(60_000, 1000 * 2 ** Math.max(0, attempt - 1));
	return Math.round(base * (0.5 + Math.random() / 2));
}

function retryAfterMs(header: string | null | undefined): number | undefined {
	if (!header) return undefined;
	const seconds = Number(header);
	const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(header) - Date.now();
	return Number.isFinite(ms) && ms >= 0 ? Math.min(ms, 300_000) : undefined;
}

/** The base address a redirect points at: what LANGFUSE_HOST should be (the API path taken off). */
function redirectHost(location: string, config: Pick<Config, "host">): string {
	try {
		const url = new URL(location, config.host);
		const base = url.pathname.replace(/\/api\/public\/.*$/, "").replace(/\/+$/, "");
		return `${url.origin}${base}`;
	} catch {
		return location.slice(0, 200);
	}
}

/**
 * What an answer means. 2xx sent · 207 (ingestion) per event · 400 and 413 split · 401/403 blocked ·
 * 404/405 on OTLP: no endpoint · 3xx blocked, never followed · anything else retried with backoff.
 */
function interpretResponse(transport: Wire, answer: HttpAnswer, config: Pick<Config, "host"> = { host: "" }): PostOutcome {
	const { status, text } = answer;
	if (status === 207 && transport === "ingestion") {
		let errors: { id: string; status: number; message?: string; error?: unknown }[] = [];
		try {
			errors = JSON.parse(text)?.errors ?? [];
		} catch {
			return { kind: "retry", reason: "HTTP 207 with an unreadable body" };
		}
		if (errors.length === 0) return { kind: "ok" };
		const retriable = errors.filter(error => isRetriable(error.status));
		const first = errors.find(error => !isRetriable(error.status));
		return {
			kind: "some-failed",
			failedIds: retriable.map(error => error.id),
			dropped: errors.length - retriable.length,
			reason: first ? `HTTP ${first.status} ${String(first.message ?? first.error ?? "").slice(0, 200)}` : `HTTP ${retriable[0]!.status}`,
		};
	}
	if (status >= 200 && status < 300) return { kind: "ok" };
	if (status === 401 || status === 403) {
		return { kind: "blocked", reason: `Langfuse answered HTTP ${status}: check LANGFUSE_PUBLIC_KEY / LANGFUSE_SECRET_KEY and LANGFUSE_HOST` };
	}
	if ((status === 404 || status === 405) && transport === "otel") return { kind: "switch" };
	if (status >= 300 && status < 400) {
		// Never followed: a redirected POST arrives as a body-less GET or hands the body to another host.
		const where = answer.location ? ` to ${oneLine(answer.location, 200)}` : "";
		const fix = answer.location ? `set LANGFUSE_HOST=${redirectHost(answer.location, config)}` : "set LANGFUSE_HOST to the address Langfuse really answers on";
		return { kind: "blocked", reason: `Langfuse redirects (HTTP ${status})${where}: ${fix}; data stays spooled` };
	}
	if (status === 400 || status === 413) return { kind: "split", status, reason: `HTTP ${status} ${oneLine(text, 200)}`.trim() };
	return { kind: "retry", reason: `HTTP ${status}`, afterMs: retryAfterMs(answer.retryAfter) };
}

const isRetriable = (status: number) => status === 408 || status === 429 || status >= 500;

function describeOutcome(outcome: { kind: string; reason?: string }): string {
	return outcome.kind === "ok" ? "ok" : `${outcome.kind}${outcome.reason ? ` (${outcome.reason})` : ""}`;
}

// ════════════════════════════════════════════════════════════════════════════════════════════════
// §6 Host kit — what every adapter shares: the process runtime, session claims, guarded hooks,
//    host-content helpers, status bar, /langfuse, test trace. Adapters are mappings over this.
// ════════════════════════════════════════════════════════════════════════════════════════════════

interface Runtime {
	config: Config;
	redact: Redactor;
	log: Logger;
	/** Undefined when tracing is off: adapters then only keep the host healthy. */
	exporter?: Exporter;
	/** Session id → the adapter instance that traces it (a module loaded twice traces once). */
	owners: Map<string, object>;
	/** Session file → session id, so a subagent can name its parent session. */
	sessionFiles: Map<string, string>;
	/** Session id → recorder, for /langfuse and for OpenCode subagents looking up their parent. */
	recorders: Map<string, SessionRecorder>;
	hostPackage?: { name: string; version: string } | null;
}

interface RuntimeOptions {
	fetch?: FetchLike;
	backoffMs?: (attempt: number) => number;
	write?: (line: string) => void;
	/** Hook commands (Codex, Claude Code) print nothing unless LANGFUSE_DEBUG: the host shows every line. */
	quiet?: boolean;
	/** Tests turn this off so no process-wide exit hook is left behind. */
	exitHook?: boolean;
	/** Send what earlier processes left in the spool (off inside a hook's short time budget). */
	replaySpool?: boolean;
}

const RUNTIME_KEY = Symbol.for("langfuse.ts/runtime");

/** The process's runtime, created on first use and shared through globalThis. */
function processRuntime(): Runtime {
	const holder = globalThis as unknown as Record<symbol, Runtime | undefined>;
	return (holder[RUNTIME_KEY] ??= createRuntime(process.env));
}

/** Config, redactor and logger: built here only, so every line any part of the file prints is redacted alike. */
function diagnostics(env: Env, options: Pick<RuntimeOptions, "write" | "quiet"> = {}): ConfigResult & { redact: Redactor; log: Logger } {
	const { config, problems } = readConfig(env);
	const redact = makeRedactor({
		env: { ...env, LANGFUSE_SECRET_KEY: config.secretKey },
		extraPatterns: config.redactPatterns,
		onInvalidPattern: (pattern, error) => problems.push(`LANGFUSE_REDACT_REGEX: skipping invalid pattern ${shown(pattern)} (${oneLine(error, 80)})`),
	});
	const write = options.quiet && !config.debug ? () => {} : options.write;
	return { config, problems, redact, log: new Logger(redact, config.debug, write) };
}

function createRuntime(env: Env, options: RuntimeOptions = {}): Runtime {
	const { config, problems, redact, log } = diagnostics(env, options);
	const runtime: Runtime = { config, redact, log, owners: new Map(), sessionFiles: new Map(), recorders: new Map() };
	for (const problem of problems) log.warnOnce(problem, problem);
	if (!config.enabled) {
		log.warnOnce("disabled", `tracing off: ${config.disabledReason}`);
		return runtime;
	}
	log.debug(
		`config: host=${config.host} public_key=${maskKey(config.publicKey)} secret_key=${maskKey(config.secretKey)} transport=${config.transport} mode=${config.exportMode} grouping=${config.grouping} flush_ms=${config.flushMs} max_queue=${config.maxQueue} sample_rate=${config.sampleRate} spool=${config.spoolDir}`,
	);
	runtime.exporter = new Exporter(config, redact, log, { fetch: options.fetch, backoffMs: options.backoffMs });
	runtime.exporter.start({ replaySpool: options.replaySpool !== false });
	if (options.exitHook !== false) {
		const exporter = runtime.exporter;
		// The process is going: what is still open ends here (marked), and everything unsent is spooled.
		const saveAll = () => {
			for (const recorder of runtime.recorders.values()) recorder.close(Date.now(), { level: "WARNING", statusMessage: "the agent exited before this ended" });
			exporter.exitSync();
		};
		process.once("exit", saveAll);
		saveOnFatalSignals(saveAll);
	}
	return runtime;
}

/**
 * A signal nobody handles ends the process WITHOUT 'exit' (pi in print mode on SIGINT), so the queue
 * would be lost. While no one but us and signal-exit (the npm package: it re-raises only when its own
 * listeners are the only ones; pi loads it) listens, spool what is unsent, step aside and re-raise:
 * the process dies exactly as it would have without us. A host with its own handler (omp's shutdown,
 * a TUI) decides itself, and 'exit' saves the queue then.
 */
function saveOnFatalSignals(saveAll: () => void): void {
	const passiveListeners = () => {
		const holder = process as unknown as { __signal_exit_emitter__?: { count?: unknown } };
		const v4 = (globalThis as Record<symbol, { count?: unknown } | undefined>)[Symbol.for("signal-exit emitter")];
		const count = (value: unknown) => (typeof value === "number" && value > 0 ? value : 0);
		return count(holder.__signal_exit_emitter__?.count) + count(v4?.count);
	};
	for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
		const onSignal = () => {
			if (process.listenerCount(signal) - 1 > passiveListeners()) return;
			process.removeListener(signal, onSignal);
			try {
				saveAll();
			} catch {
				// dying anyway
			}
			process.kill(process.pid, signal);
		};
		try {
			process.on(signal, onSignal);
		} catch {
			// a runtime without signal events: 'exit' is all there is
		}
	}
}

/** State next to the spool (Codex cursors, import marks): private, replaced whole (a crash leaves the old one). */
function writePrivateJson(file: string, value: object): void {
	fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
	const temporary = `${file}.${process.pid}.tmp`;
	fs.writeFileSync(temporary, JSON.stringify({ ...value, updatedAt: new Date().toISOString() }), { mode: 0o600 });
	fs.renameSync(temporary, file);
}

/** Sampling is decided once per session from its id: a session is traced whole or not at all. */
function sampled(config: Config, sessionId: string): boolean {
	if (config.sampleRate >= 1) return true;
	return Number.parseInt(hashId(`sample:${sessionId}`, 16).slice(0, 8), 16) / 0xffffffff < config.sampleRate;
}

type HostSessionInfo = Omit<SessionInfo, "tags" | "userId" | "environment" | "release" | "version" | "grouping" | "exportMode" | "tracePrefix">;

/** What the host knows about a session, completed with what the config says about every trace. */
function sessionInfo(config: Config, info: HostSessionInfo, extraTags: string[] = []): SessionInfo {
	return {
		...info,
		tags: [...new Set([...config.tags, info.host, ...extraTags])],
		userId: config.userId,
		environment: config.environment,
		release: config.release,
		version: config.version,
		grouping: config.grouping,
		exportMode: config.exportMode,
		tracePrefix: config.tracePrefix,
	};
}

/** A live host session's recorder: it feeds the exporter and is closed (marked) if the process ends. */
function newRecorder(runtime: Runtime, info: HostSessionInfo, extraTags: string[] = []) {
	const recorder = new SessionRecorder(record => runtime.exporter?.enqueue(record), sessionInfo(runtime.config, info, extraTags), line => runtime.log.debug(line));
	runtime.recorders.set(info.sessionId, recorder);
	return recorder;
}

/**
 * Claims a session for one adapter instance (`owner`). False when another copy of langfuse.ts traces
 * it already (a module loaded twice traces once) or when it is not to be traced (sampled out).
 */
function claimSession(runtime: Runtime, owner: object, sessionId: string, traced: boolean): boolean {
	const holder = runtime.owners.get(sessionId);
	if ((holder && holder !== owner) || !traced) {
		runtime.log.debug(holder && holder !== owner ? `session ${sessionId} is traced by another copy of langfuse.ts` : `session ${sessionId} sampled out`);
		return false;
	}
	runtime.owners.set(sessionId, owner);
	return true;
}

/** The session is over: its owner and recorder are forgotten, so a long-lived host's memory stays flat. */
function releaseSession(runtime: Runtime, owner: object, sessionId: string): void {
	if (runtime.owners.get(sessionId) !== owner) return;
	runtime.owners.delete(sessionId);
	runtime.recorders.delete(sessionId);
	// its session file (kept so subagents can name their parent) goes too: live sessions only
	for (const [file, id] of runtime.sessionFiles) if (id === sessionId) runtime.sessionFiles.delete(file);
}

/** An event object, or null: strings, arrays and boxed primitives are not events and are never spread. */
function eventObject(value: unknown): object | null {
	if (value === null || typeof value !== "object" || Array.isArray(value) || value instanceof String || ArrayBuffer.isView(value)) return null;
	return value;
}

/** How a tool call ended, in the terms the hosts report it. */
interface ToolOutcome {
	output?: unknown;
	isError?: boolean;
	exitCode?: number;
	error?: unknown;
	name?: string;
	metadata?: Metadata;
}

/** A tool's end as the recorder takes it: level and status message are decided here, for every host. */
function toolEnd(outcome: ToolOutcome): EndOptions & { name?: string } {
	const exitCode = typeof outcome.exitCode === "number" && Number.isFinite(outcome.exitCode) ? outcome.exitCode : undefined;
	const failedExit = exitCode !== undefined && exitCode !== 0;
	const failed = outcome.isError === true || outcome.error !== undefined || failedExit;
	const errorText = outcome.error === undefined ? "" : typeof outcome.error === "string" ? outcome.error : textOf(outcome.error) || String(outcome.error);
	return {
		name: outcome.name,
		output: outcome.output,
		metadata: outcome.metadata,
		level: failed ? "ERROR" : undefined,
		statusMessage: !failed ? undefined : errorText ? oneLine(errorText, 300) : failedExit ? `exit code ${exitCode}` : oneLine(textOf(outcome.output) || "tool failed", 300),
	};
}

/**
 * Runs a host callback so that nothing escapes: sync throws and async rejections are caught and
 * reported (one line, details with LANGFUSE_DEBUG), and the host always gets undefined back —
 * omp replaces the provider request with any other value, and a throw in tool_call blocks the tool.
 */
function guarded<A extends unknown[]>(log: Logger, label: string, handler: (...args: A) => unknown): (...args: A) => undefined | Promise<undefined> {
	const report = (error: unknown) => {
		log.warnOnce(`internal:${label}`, `internal error in ${label} (tracing continues): ${errorText(error)}`);
		log.debug(error instanceof Error && error.stack ? error.stack : String(error));
	};
	return (...args: A) => {
		try {
			const result = handler(...args);
			if (result && typeof (result as Promise<unknown>).then === "function") {
				return (result as Promise<unknown>).then(
					() => undefined,
					error => void report(error),
				);
			}
		} catch (error) {
			report(error);
		}
		return undefined;
	};
}

interface PiApi {
	on(event: string, handler: (event: any, ctx: any) => unknown): void;
	registerCommand?(name: string, options: { description?: string; handler: (args: string, ctx: any) => Promise<void> | void }): void;
}

/** Every pi.on subscription goes through here. */
function safeOn(pi: PiApi, log: Logger, event: string, handler: (event: any, ctx: any) => unknown): void {
	try {
		pi.on(event, guarded(log, event, handler));
	} catch (error) {
		log.debug(`could not subscribe to ${event}: ${errorText(error)}`);
	}
}

/** The host's package name and version, found by walking up from the running script. */
function findHostPackage(): { name: string; version: string } | null {
	try {
		let dir = path.dirname(fs.realpathSync(process.argv[1] ?? ""));
		for (let depth = 0; depth < 6; depth++) {
			const file = path.join(dir, "package.json");
			if (fs.existsSync(file)) {
				const pkg = JSON.parse(fs.readFileSync(file, "utf8"));
				if (typeof pkg.name === "string") return { name: pkg.name, version: String(pkg.version ?? "") };
			}
			dir = path.dirname(dir);
		}
	} catch {
		// unknown host version is fine
	}
	return null;
}

/** A provider request body as omp/pi hand it over (OpenAI chat or Responses, Anthropic, Google): the fields read. */
interface ProviderRequest {
	model?: unknown;
	messages?: unknown;
	system?: unknown;
	input?: unknown;
	instructions?: unknown;
	contents?: unknown;
	tools?: unknown;
}

const CONTENT_KEYS = new Set(["model", "messages", "input", "instructions", "tools", "system", "contents", "stream", "stream_options", "metadata", "prompt_cache_key"]);

/** Scalar request settings (temperature, max tokens, reasoning effort …) as Langfuse model parameters. */
function modelParameters(payload: object): Record<string, string | number | boolean> | undefined {
	const parameters: Record<string, string | number | boolean> = {};
	if (!eventObject(payload)) return undefined;
	let count = 0;
	// runs in a hook the host awaits: a few keys, each small (a host's 250,000-key object costs nothing)
	for (const key in payload) {
		if (++count > 60) break;
		if (CONTENT_KEYS.has(key)) continue;
		const value = call(() => (payload as Record<string, unknown>)[key]);
		if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") parameters[key] = typeof value === "string" ? value.slice(0, 1000) : value;
		else if (value && typeof value === "object" && !Array.isArray(value)) {
			const text = smallJson(value);
			if (text !== undefined) parameters[key] = text;
		}
	}
	return Object.keys(parameters).length ? parameters : undefined;
}

/** JSON of a small object (≤ 100 values, ≤ 2,000 characters), else undefined: never a long walk in a hook. */
function smallJson(value: object): string | undefined {
	let nodes = 0;
	const small = (item: unknown, depth: number): boolean => {
		if (++nodes > 100 || depth > 4) return false;
		if (item === null || typeof item !== "object") return typeof item !== "string" || item.length <= 2000;
		if (Array.isArray(item)) return item.length <= 100 && item.every(element => small(element, depth + 1));
		// a boxed string or typed array would enumerate every index before the count could stop it
		if (!eventObject(item)) return false;
		for (const key in item) if (!small(call(() => (item as Record<string, unknown>)[key]), depth + 1)) return false;
		return true;
	};
	try {
		if (!small(value, 0)) return undefined;
		const text = JSON.stringify(value);
		return text.length <= 2000 ? text : undefined;
	} catch {
		return undefined;
	}
}

function toolNames(payload: ProviderRequest): string[] | undefined {
	if (!Array.isArray(payload.tools)) return undefined;
	return payload.tools.slice(0, 100).map(tool => stringOr(tool?.function?.name) ?? stringOr(tool?.name) ?? "?");
}

/** What the status bar and /langfuse show of a session: its recorder, whether tracing is paused, the last text set. */
interface TracedSession {
	recorder: SessionRecorder;
	paused: boolean;
	lastIndicator?: string;
}

/** Status-bar entry: on, events waiting, or the failure — only when the host has a UI. */
function updateIndicator(runtime: Runtime, session: TracedSession, ctx: any): void {
	if (!runtime.config.uiIndicator || !runtime.exporter || !call(() => ctx?.hasUI)) return;
	const status = runtime.exporter.status;
	const waiting = status.queued + status.waitingBatches;
	const text = status.blocked
		? "langfuse ✗ export blocked (/langfuse)"
		: status.lastError
			? `langfuse ⚠ retrying, ${waiting} waiting`
			: session.paused
				? "langfuse ○ paused"
				: waiting > 0
					? `langfuse ● ${waiting} waiting`
					: "langfuse ●";
	if (text === session.lastIndicator) return;
	session.lastIndicator = text;
	call(() => ctx.ui?.setStatus?.("langfuse", text));
}

function clearIndicator(runtime: Runtime, ctx: any): void {
	if (runtime.config.uiIndicator && call(() => ctx?.hasUI)) call(() => ctx.ui?.setStatus?.("langfuse", undefined));
}

/** `/langfuse [test|off|on]` in omp and pi. */
async function langfuseCommand(runtime: Runtime, args: string, ctx: any, session: TracedSession | null): Promise<void> {
	const notify = (text: string, level: "info" | "warning" | "error" = "info") => {
		if (call(() => ctx?.hasUI)) call(() => ctx.ui?.notify?.(runtime.redact(text), level));
		else process.stdout.write(`${runtime.redact(text)}\n`);
	};
	const { config, exporter } = runtime;
	if (!exporter) return notify(`Langfuse tracing is off: ${config.disabledReason}`, "warning");
	if (args === "off" || args === "on") {
		if (session) session.paused = args === "off";
		if (session) updateIndicator(runtime, session, ctx);
		return notify(`Langfuse tracing ${args === "off" ? "paused" : "resumed"} for this session`);
	}
	if (args === "test") {
		const result = await sendTestTrace(runtime);
		return notify(result.ok ? `Test trace sent: ${result.detail}` : `Test trace failed: ${result.detail}`, result.ok ? "info" : "error");
	}
	const status = exporter.status;
	const stats = await exporter.spool.stats();
	const traceId = session?.recorder.lastTraceId;
	const link = traceId ? await traceUrl(runtime, traceId) : undefined;
	notify(
		[
			`Langfuse tracing ${session?.paused ? "paused" : "on"} → ${config.host} (${maskKey(config.publicKey)}, ${status.transport}, mode ${config.exportMode})`,
			`queued ${status.queued}, waiting batches ${status.waitingBatches}, spool ${stats.files} file(s) ${formatBytes(stats.bytes)}, sent ${status.sentSpans}, dropped ${status.droppedSpans}`,
			status.blocked ? `blocked: ${status.blocked}` : status.lastError ? `last error: ${status.lastError}` : "no errors",
			link ? `trace: ${link}` : "no trace yet in this session",
		].join("\n"),
	);
}

/** The Langfuse UI address of a trace; the project id is looked up once. */
async function traceUrl(runtime: Pick<Runtime, "config">, traceId: string): Promise<string> {
	const projectId = await projectIdOf(runtime);
	return projectId ? `${runtime.config.host}/project/${projectId}/traces/${traceId}` : `${runtime.config.host} (trace ${traceId})`;
}

const projectIds = new Map<string, Promise<string | undefined>>();

function projectIdOf(runtime: Pick<Runtime, "config">): Promise<string | undefined> {
	const { config } = runtime;
	let lookup = projectIds.get(config.host + config.publicKey);
	if (!lookup) {
		lookup = langfuseGet(config, "/api/public/projects")
			.then(answer => (answer.ok ? (answer.body as any)?.data?.[0]?.id : undefined))
			.catch(() => undefined);
		projectIds.set(config.host + config.publicKey, lookup);
	}
	return lookup;
}

/** A GET of Langfuse's public API, its JSON body parsed (or the start of its text). */
async function langfuseGet(config: Config, pathname: string, authenticated = true): Promise<{ ok: boolean; status: number; body?: unknown; error?: string }> {
	const answer = await httpRequest(config, pathname, { anonymous: !authenticated });
	let body: unknown;
	try {
		body = JSON.parse(answer.text);
	} catch {
		body = answer.text.slice(0, 200);
	}
	return { ok: answer.status >= 200 && answer.status < 300, status: answer.status, body, error: answer.error };
}

/** Records one small trace and sends it straight away, bypassing the queue, to prove the setup. */
async function sendTestTrace(runtime: Pick<Runtime, "config" | "redact" | "log">): Promise<{ ok: boolean; detail: string; traceId?: string }> {
	const records: ObservationRecord[] = [];
	const recorder = new SessionRecorder(record => records.push(record), {
		sessionId: `langfuse-ts-test-${Date.now()}`,
		host: "langfuse.ts",
		metadata: { test: true },
		tags: ["langfuse.ts-test"],
		userId: runtime.config.userId,
		environment: runtime.config.environment,
		release: runtime.config.release,
		version: runtime.config.version,
		grouping: "prompt",
		exportMode: "full",
		tracePrefix: "",
	});
	const now = Date.now();
	recorder.startPrompt(now, { input: "langfuse.ts test trace" });
	recorder.event(now, { name: "hello from langfuse.ts" });
	recorder.endPrompt(now + 1, { output: "ok" });
	const traceId = records[0]!.traceId;
	const exporter = new Exporter({ ...runtime.config, spoolDir: path.join(os.tmpdir(), `langfuse-ts-test-${process.pid}`) }, runtime.redact, runtime.log);
	for (const record of records) exporter.enqueue(record);
	await exporter.flush(Date.now() + REQUEST_TIMEOUT_MS);
	const status = exporter.status;
	await fsp.rm(exporter.spool.dir, { recursive: true, force: true }).catch(() => {});
	if (status.sentSpans > 0 && status.waitingBatches === 0 && status.droppedSpans === 0 && !status.lastError) return { ok: true, detail: await traceUrl(runtime, traceId), traceId };
	return { ok: false, detail: status.blocked ?? status.lastError ?? "not confirmed" };
}

// ── transcripts → recorder ───────────────────────────────────────────────────────────────────────
// A host's own record, parsed into a RecordedPrompt (§2), becomes observations here, for every host
// that reads a record instead of live events (Codex rollouts, Claude Code transcripts, history import).

/** Deterministic ids for one recorded prompt, so re-reading a record updates its traces, never duplicates them. */
interface TranscriptIds {
	traceId: string;
	/** kind "prompt" with the prompt's id, a step's kind with the step's id, "turn" with TranscriptOptions.turnKey. */
	observation(kind: "prompt" | "turn" | RecordedStep["kind"], key: string): string;
}

/** What a host's live traces have beyond the flat default (Codex): turns, and subagents as sessions of their own. */
interface TranscriptOptions {
	/** Each LLM call opens a turn (as omp/pi and OpenCode traces have live), keyed by its index in the prompt or its id. */
	turnKey?: (call: RecordedLlmCall, index: number) => string;
	/** A subagent's prompts become its own session's traces, linked to the task tool; undefined = not traced (sampled out). */
	subagentIds?: (sessionId: string, prompt: RecordedPrompt) => TranscriptIds | undefined;
}

/** Ids hashed from one scope string (host, session, prompt): the default for a host without an older scheme. */
function transcriptIds(scope: string): TranscriptIds {
	return { traceId: hashId(scope, 32), observation: (kind, key) => hashId(`${scope}:${kind}:${key}`, 16) };
}

/** An assistant message of text only reads best as that text; with tool calls or reasoning, as the message. */
function assistantOutput(message: ChatMessage): unknown {
	const [chat] = chatMessagesOf(message);
	if (!chat) return undefined;
	if (chat.tool_calls?.length || chat.thinking?.length) return chat;
	return chat.content || undefined;
}

/** One recorded prompt → one trace: a generation per LLM call, a tool per call, compactions and events. */
function recordTranscript(recorder: SessionRecorder, prompt: RecordedPrompt, ids: TranscriptIds, options: TranscriptOptions = {}): void {
	recorder.startPrompt(prompt.startMs, { traceId: ids.traceId, id: ids.observation("prompt", prompt.id), input: prompt.text || undefined, metadata: prompt.metadata });
	recordSteps(recorder, prompt.steps, ids, undefined, options);
	recorder.endPrompt(prompt.endMs, { output: prompt.answer, ...promptEnd(prompt) });
}

/** How a recorded prompt (or subagent run) ended: ERROR, WARNING (aborted, unfinished) or fine. */
function promptEnd(prompt: RecordedPrompt): EndOptions {
	return {
		level: prompt.error ? "ERROR" : prompt.aborted || prompt.warning ? "WARNING" : undefined,
		statusMessage: prompt.error ?? prompt.warning ?? (prompt.aborted ? "aborted" : undefined),
		metadata: prompt.endMetadata,
	};
}

/** The steps of a prompt, under the open turn or (a subagent's) under the span `parentKey`. */
function recordSteps(recorder: SessionRecorder, steps: RecordedStep[], ids: TranscriptIds, parentKey?: string, options: TranscriptOptions = {}): void {
	let turns = 0;
	for (const step of steps) {
		switch (step.kind) {
			case "llm": {
				const key = `llm:${step.id}`;
				const index = turns++;
				if (options.turnKey) recorder.startTurn(step.startMs, { name: `turn ${index}`, id: ids.observation("turn", options.turnKey(step, index)) });
				const parameters = step.parameters && Object.keys(step.parameters).length ? step.parameters : undefined;
				const input = step.input.length || step.tools?.length ? new ChatRequest(step.input, step.tools) : undefined;
				recorder.startGeneration(key, step.startMs, { id: ids.observation("llm", step.id), model: step.model, input, modelParameters: parameters, parentKey });
				recorder.endGeneration(key, step.endMs, {
					model: step.model,
					output: assistantOutput(step.output),
					usage: step.usage && usageDetails(step.usage),
					cost: step.costUsd && costDetails(step.costUsd),
					completionStartMs: step.completionStartMs,
					level: step.error ? "ERROR" : undefined,
					statusMessage: step.error,
					metadata: { ...step.metadata, provider: step.provider, ...(step.stopReason !== undefined && { stopReason: step.stopReason }) },
				});
				break;
			}
			case "tool": {
				const key = `tool:${step.id}`;
				recorder.startTool(key, step.startMs, { name: step.name, id: ids.observation("tool", step.id), input: step.input, metadata: step.metadata, parentKey });
				if (step.subagent?.sessionId && options.subagentIds) recordSubagentSession(recorder, step, ids, options);
				else for (const run of step.subagent?.prompts ?? []) recordSubagent(recorder, run, ids, key);
				if (step.endMs === undefined) break; // endPrompt closes it, marked as still running
				recorder.endTool(key, step.endMs, toolEnd({ output: step.output, isError: step.isError, exitCode: step.exitCode, error: step.error, metadata: { exitCode: step.exitCode } }));
				break;
			}
			case "compaction": {
				const details = step.summary !== undefined || step.tokensBefore !== undefined ? { summary: step.summary, tokensBefore: step.tokensBefore } : undefined;
				const id = ids.observation("compaction", step.id);
				if (step.endMs <= step.startMs) {
					recorder.event(step.startMs, { name: "compaction", id, metadata: details, parentKey });
					break;
				}
				const key = `compaction:${step.id}`;
				recorder.startSpan(key, step.startMs, { name: "compaction", id, metadata: step.tokensBefore !== undefined ? { tokensBefore: step.tokensBefore } : undefined, parentKey });
				recorder.endSpan(key, step.endMs, { output: step.summary });
				break;
			}
			case "event":
				recorder.event(step.at, { name: step.name, id: ids.observation("event", step.id), level: step.level, statusMessage: step.message, metadata: step.metadata, parentKey });
				break;
		}
	}
}

/** A subagent that is a session of its own live (omp, OpenCode): its prompts are its own traces, linked to the tool. */
function recordSubagentSession(recorder: SessionRecorder, tool: RecordedToolCall, ids: TranscriptIds, options: TranscriptOptions): void {
	const { sessionId, prompts } = tool.subagent!;
	const child = recorder.subagent(sessionId!, { parentSessionId: recorder.info.sessionId, parentTraceId: ids.traceId, parentObservationId: ids.observation("tool", tool.id) });
	for (const prompt of prompts) {
		const childIds = options.subagentIds!(sessionId!, prompt);
		if (childIds) recordTranscript(child, prompt, childIds, options);
	}
}

/** A subagent run (its own record) as an agent span under the tool call that started it: same trace, same session. */
function recordSubagent(recorder: SessionRecorder, run: RecordedPrompt, ids: TranscriptIds, toolKey: string): void {
	const key = `agent:${run.id}`;
	const kind = stringOr(run.metadata?.agentType);
	recorder.startSpan(key, run.startMs, { type: "agent", name: kind ? `subagent ${kind}` : "subagent", id: ids.observation("prompt", run.id), input: run.text || undefined, metadata: run.metadata, parentKey: toolKey });
	recordSteps(recorder, run.steps, ids, key);
	recorder.endSpan(key, run.endMs, { output: run.answer, ...promptEnd(run) });
}

// ── record files: cursor, lock, export ──────────────────────────────────────────────────────────
// Hook commands (Codex, Claude Code) read a host's record file from where the last run stopped, under a
// per-file lock, send what is new within the host's time budget, and move the cursor only once nothing
// can be lost any more.

/** Prompt ids kept in a cursor: prompts sent while an earlier one is still open (unfinished turn, background agent). */
const CURSOR_DONE_KEPT = 64;

/** Per record file, in `<spool>/<host>/`: where the next run starts and what it must remember. */
interface RecordCursor {
	/** Bytes already handled: everything before the first prompt that has not finished yet. */
	offset: number;
	/** Prompts after `offset` already exported, newest last. */
	done: string[];
}

/** What one read of a record file gives: the records to send and the cursor to save once they are safe. */
interface RecordRead {
	records: ObservationRecord[];
	prompts: number;
	commit: () => void;
}

function cursorFile(config: Config, host: string, record: string): string {
	return path.join(config.spoolDir, host, `${hashId(path.resolve(record), 16)}.json`);
}

/** The saved cursor's fields, or nothing (first run for this file, or an unreadable cursor: start from the top). */
function readCursor(file: string): (RecordCursor & Metadata) | undefined {
	try {
		const saved = JSON.parse(fs.readFileSync(file, "utf8"));
		if (saved && typeof saved.offset === "number" && Array.isArray(saved.done)) return saved;
	} catch {}
	return undefined;
}

function writeCursor<T extends RecordCursor>(file: string, cursor: T): void {
	writePrivateJson(file, { ...cursor, done: cursor.done.slice(-CURSOR_DONE_KEPT) });
}

/** One run per record file at a time (a notify and a hook may both fire); a dead owner's lock is taken over. */
async function lockCursor(file: string, waitMs: number): Promise<(() => void) | undefined> {
	try {
		fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
	} catch {
		return () => {}; // no spool directory: nothing to protect either
	}
	return waitForLock(`${file}.lock`, 30_000, waitMs);
}

/** A recorder whose records are collected, one per observation id (the last state wins). */
function collectingRecorder(runtime: Pick<Runtime, "config">, info: HostSessionInfo, records: Map<string, ObservationRecord>, extraTags: string[] = []): SessionRecorder {
	return new SessionRecorder(record => records.set(`${record.traceId}/${record.id}`, record), sessionInfo(runtime.config, info, extraTags));
}

/**
 * One hook run over one record file: one run per file at a time (a dead owner's lock is taken over), the
 * records sent or spooled within `budgetMs` from process start, the cursor saved only when they are safe.
 */
async function exportRecordFile(runtime: Runtime, host: string, record: string, budgetMs: number, read: () => Promise<RecordRead>): Promise<void> {
	const { exporter, log } = runtime;
	if (!exporter) return;
	const remaining = () => budgetMs - process.uptime() * 1000;
	const unlock = await lockCursor(cursorFile(runtime.config, host, record), Math.min(1000, remaining() - 300));
	if (!unlock) {
		log.debug(`${host}: another run is reading ${record}; leaving it to that one`);
		return;
	}
	try {
		const result = await read();
		for (const observation of result.records) exporter.enqueue(observation);
		await exporter.shutdown(Math.max(100, remaining()));
		const status = exporter.status;
		// Advance only when nothing can be lost: spooled on disk, or confirmed by Langfuse.
		if (exporter.spool.available || (status.queued === 0 && status.waitingBatches === 0)) result.commit();
		log.debug(`${host}: ${result.prompts} prompt(s), ${result.records.length} observation(s); sent ${status.sentSpans}, waiting ${status.queued + status.waitingBatches}${status.lastError ? ` (${status.lastError})` : ""}`);
	} finally {
		unlock();
	}
	await handOnSpool(runtime, host);
}

/**
 * Spool files earlier runs left (Langfuse was down then) go with a detached `flush` that outlives this
 * run: replaying them here could spend the host's budget, and the host waits for this process. Only when
 * Langfuse took this run's own batch: otherwise they wait for a run that gets through.
 */
async function handOnSpool(runtime: Runtime, host: string): Promise<void> {
	const { exporter, log } = runtime;
	if (!exporter || !exporter.spool.available) return;
	const status = exporter.status;
	if (status.sentSpans === 0 || status.queued > 0 || status.waitingBatches > 0 || status.lastError || status.blocked) return;
	const { files } = await exporter.spool.stats({ mine: true });
	if (files === 0) return;
	log.debug(`${host}: ${files} spooled batch(es) from earlier runs: handing them to a background flush`);
	await spawnDetached(runtime, host, ["flush"]);
}

/**
 * This file, run again with `args` as a detached process that outlives this one (its output goes nowhere).
 * node:child_process is loaded here, when a hook command needs it, not with the file.
 */
async function spawnDetached(runtime: Runtime, host: string, args: string[]): Promise<void> {
	const script = process.argv[1];
	if (!script) return;
	try {
		const { spawn } = await import("node:child_process");
		const child = spawn(process.execPath, [...process.execArgv, script, ...args], { detached: true, stdio: "ignore", env: process.env });
		child.on("error", () => {});
		child.unref();
	} catch (error) {
		runtime.log.debug(`${host}: could not start a background run: ${errorText(error)}`);
	}
}

// ════════════════════════════════════════════════════════════════════════════════════════════════
// §7 Adapters — thin mappings of each host's events onto the recorder.
// ════════════════════════════════════════════════════════════════════════════════════════════════

// ── §7.1 omp and pi ───────────────────────────────────────────────────────────────────────────────

// Host shapes: only the fields read here, each optional and unchecked — a host (or a fuzzer) may send
// anything, so every value is tested before use. Sources at the pinned versions:
//   pi 0.73.1   @mariozechner/pi-coding-agent dist/core/extensions/types.d.ts (ExtensionContext, *Event)
//   omp 18.2.3  @oh-my-pi/pi-coding-agent src/extensibility/extensions/types.ts (the same, plus goal_updated,
//               ttsr_triggered, todo_reminder, credential_disabled, retry_fallback_*)

/** ExtensionContext: the session, the model, the UI. */
interface PiContext {
	sessionManager?: {
		getSessionId?(): unknown;
		getSessionFile?(): unknown;
		getHeader?(): { parentSession?: unknown; timestamp?: unknown } | undefined;
		getEntries?(): unknown;
	};
	model?: { id?: unknown; provider?: unknown; api?: unknown };
	cwd?: unknown;
	mode?: unknown;
	hasUI?: unknown;
	ui?: { notify?(text: string, level: string): void; setStatus?(key: string, text: string | undefined): void };
	getContextUsage?(): { tokens?: unknown; contextWindow?: unknown; percent?: unknown } | undefined;
}

/** AgentMessage (pi-ai): user, assistant or toolResult; an assistant message carries usage and cost. */
interface PiMessage {
	role?: unknown;
	content?: unknown;
	model?: unknown;
	provider?: unknown;
	api?: unknown;
	stopReason?: unknown;
	errorMessage?: unknown;
	errorStatus?: unknown;
	responseId?: unknown;
	duration?: unknown;
	ttft?: unknown;
	timestamp?: unknown;
	usage?: {
		input?: unknown;
		output?: unknown;
		cacheRead?: unknown;
		cacheWrite?: unknown;
		totalTokens?: unknown;
		cost?: { input?: unknown; output?: unknown; cacheRead?: unknown; cacheWrite?: unknown; total?: unknown };
	};
}

/** The fields of every event this adapter reads; each event type has a few of them. */
interface PiEvent {
	text?: unknown;
	prompt?: unknown;
	turnIndex?: unknown;
	payload?: unknown;
	message?: PiMessage;
	messages?: unknown;
	toolResults?: unknown;
	toolCallId?: unknown;
	toolName?: unknown;
	input?: unknown;
	args?: unknown;
	content?: unknown;
	result?: { content?: unknown; details?: unknown };
	isError?: unknown;
	details?: unknown;
	intent?: unknown;
	willContinue?: unknown;
	attempt?: unknown;
	maxAttempts?: unknown;
	delayMs?: unknown;
	errorMessage?: unknown;
	success?: unknown;
	finalError?: unknown;
	reason?: unknown;
	action?: unknown;
	aborted?: unknown;
	fromExtension?: unknown;
	compactionEntry?: { id?: unknown; summary?: unknown; tokensBefore?: unknown; tokensAfter?: unknown; method?: unknown };
	goal?: { objective?: unknown };
}

interface PiSession extends TracedSession {
	/** The prompt text, from `input`/`before_agent_start`, until agent_start opens its trace. */
	pendingPrompt?: string;
	/** agent_end with willContinue: the host retries inside the same prompt. */
	continuing: boolean;
	generationKey?: string;
	generations: number;
	endedTools: Set<string>;
	/** Between auto_compaction_start and its end. */
	compaction?: { startedAt: number; reason?: unknown; action?: unknown; recorded?: boolean };
	ctx: PiContext;
	unsubscribe?: () => void;
	/** agent_start until the user message: the trace id waits for that message's timestamp (piIds). */
	pendingStart?: { at: number; input?: string; metadata: Metadata };
	pendingTurn?: { at: number; index?: number };
	/** The open prompt's ids; undefined when it had no user message (random ids then). */
	ids?: TranscriptIds;
	/** Turns in the open prompt: the key of each turn's id, as history import counts them. */
	turns: number;
}

/**
 * Ids of an omp/pi prompt from what the session file records too, so a session traced live and imported
 * later is one trace: the user message's timestamp keys the trace, an assistant message's timestamp its
 * generation, the tool-call id a tool, the turn's index in the prompt a turn.
 */
const piIds = (sessionId: string, userTimestamp: string) => transcriptIds(`pi:${sessionId}:${userTimestamp}`);

/** Events that come between agent_start and the user message: they do not open the prompt yet. */
const PI_BEFORE_USER = new Set(["agent_start", "turn_start", "message_start", "message_end", "input", "before_agent_start"]);

/** Ended sessions remembered per extension instance, so their late events are recognised and ignored. */
const PI_SESSIONS_KEPT = 1_000;

function attachPiHost(pi: PiApi, runtime: Runtime): void {
	const { log, config } = runtime;
	const self = {};
	/** Session id → its state; null = not ours, sampled out, or ended (pi may deliver late events). */
	const sessions = new Map<string, PiSession | null>();
	/** An ended or foreign session is remembered as null, the oldest forgotten first: memory stays bounded. */
	const forgetSession = (sessionId: string) => {
		sessions.delete(sessionId);
		sessions.set(sessionId, null);
		for (const [id, known] of sessions) {
			if (sessions.size <= PI_SESSIONS_KEPT) break;
			if (known === null) sessions.delete(id);
		}
	};
	const on = (name: string, handler: (event: PiEvent, ctx: PiContext, session: PiSession) => unknown) =>
		safeOn(pi, log, name, (event, ctx) => {
			const session = sessionFor(ctx);
			// an event that is not an object (a host bug, a fuzzer) reads as one without fields
			if (!session || session.paused) return;
			if (session.pendingStart && !PI_BEFORE_USER.has(name)) openPiPrompt(session);
			return handler((eventObject(event) ?? {}) as PiEvent, session.ctx, session);
		});

	/** The session this event belongs to, claimed on first sight; null = not ours (other copy, sampled out). */
	const sessionFor = (value: unknown): PiSession | null => {
		if (value === null || typeof value !== "object" || !runtime.exporter) return null;
		const ctx = value as PiContext;
		const sessionId = call(() => ctx.sessionManager?.getSessionId?.());
		if (typeof sessionId !== "string" || !sessionId) return null;
		const known = sessions.get(sessionId);
		if (known !== undefined) {
			if (known) known.ctx = ctx;
			return known;
		}
		if (!claimSession(runtime, self, sessionId, sampled(config, sessionId))) {
			forgetSession(sessionId);
			return null;
		}
		const session = startPiSession(runtime, sessionId, ctx);
		sessions.set(sessionId, session);
		return session;
	};

	on("session_start", (_event, ctx, session) => updateIndicator(runtime, session, ctx));
	on("input", (event, _ctx, session) => {
		if (typeof event.text === "string") session.pendingPrompt = event.text;
	});
	on("before_agent_start", (event, _ctx, session) => {
		if (typeof event.prompt === "string") session.pendingPrompt = event.prompt;
	});
	on("agent_start", (_event, ctx, session) => {
		if (session.continuing && session.recorder.promptOpen) {
			session.continuing = false;
			return;
		}
		session.pendingStart = { at: Date.now(), input: session.pendingPrompt, metadata: { model: call(() => ctx.model?.id), provider: call(() => ctx.model?.provider) } };
		session.pendingPrompt = undefined;
	});
	on("turn_start", (event, _ctx, session) => {
		const index = typeof event.turnIndex === "number" ? event.turnIndex : undefined;
		if (session.pendingStart) session.pendingTurn = { at: Date.now(), index };
		else startPiTurn(session, Date.now(), index);
		session.endedTools.clear();
	});
	on("message_start", (event, _ctx, session) => {
		if (event.message?.role === "user") openPiPrompt(session, finite(event.message.timestamp));
	});
	on("before_provider_request", (event, ctx, session) => {
		const payload = (eventObject(event.payload) ?? {}) as ProviderRequest;
		// A second request with no answer to the first: the host's transport is retrying a failed call.
		if (session.generationKey && session.recorder.hasDraft(session.generationKey)) {
			session.recorder.endGeneration(session.generationKey, Date.now(), { level: "WARNING", statusMessage: "no response; the host retried the request" });
		}
		session.generationKey = `llm:${++session.generations}`;
		session.recorder.startGeneration(session.generationKey, Date.now(), {
			model: stringOr(payload.model) ?? stringOr(call(() => ctx.model?.id)),
			input: chatRequest(payload),
			modelParameters: modelParameters(payload),
			metadata: { provider: call(() => ctx.model?.provider), api: call(() => ctx.model?.api), tools: toolNames(payload) },
		});
	});
	on("message_update", (_event, _ctx, session) => {
		if (session.generationKey) session.recorder.markFirstToken(session.generationKey, Date.now());
	});
	on("message_end", (event, ctx, session) => {
		const message = event.message;
		if (message?.role === "user") return openPiPrompt(session, finite(message.timestamp));
		openPiPrompt(session);
		if (!message || message.role !== "assistant") return;
		const key = session.generationKey ?? `llm:${++session.generations}`;
		session.generationKey = undefined;
		const timestamp = finite(message.timestamp);
		session.recorder.endGeneration(key, Date.now(), { ...assistantGeneration(message, ctx), id: timestamp === undefined ? undefined : session.ids?.observation("llm", String(timestamp)) });
		session.recorder.noteOutput(textOf(message.content));
	});
	const onToolStart = (event: PiEvent, _ctx: PiContext, session: PiSession) => {
		const id = stringOr(event.toolCallId) ?? "";
		if (session.endedTools.has(id)) return;
		session.recorder.startTool(`tool:${id}`, Date.now(), {
			id: id ? session.ids?.observation("tool", id) : undefined,
			name: stringOr(event.toolName) ?? "tool",
			input: event.input ?? event.args,
			metadata: { toolCallId: event.toolCallId, intent: event.intent },
		});
	};
	const onToolEnd = (event: PiEvent, _ctx: PiContext, session: PiSession) => {
		const id = stringOr(event.toolCallId) ?? "";
		if (session.endedTools.has(id)) return;
		session.endedTools.add(id);
		const output = event.content ?? event.result?.content ?? event.result;
		session.recorder.endTool(
			`tool:${id}`,
			Date.now(),
			toolEnd({
				name: stringOr(event.toolName),
				output: simplifyContent(output),
				isError: event.isError === true,
				metadata: { isError: event.isError === true, details: event.details ?? event.result?.details },
			}),
		);
	};
	on("tool_call", onToolStart);
	on("tool_execution_start", onToolStart);
	on("tool_result", onToolEnd);
	on("tool_execution_end", onToolEnd);
	on("turn_end", (event, ctx, session) => {
		const usage = call(() => ctx.getContextUsage?.());
		session.recorder.endTurn(Date.now(), {
			output: event.message?.stopReason === undefined ? undefined : { stopReason: event.message.stopReason },
			metadata: {
				toolResults: Array.isArray(event.toolResults) ? event.toolResults.length : undefined,
				contextTokens: finite(usage?.tokens),
				contextWindow: finite(usage?.contextWindow),
				contextPercent: finite(usage?.percent) === undefined ? undefined : Math.round(Number(usage!.percent) * 10) / 10,
			},
		});
	});
	on("agent_end", (event, ctx, session) => {
		if (event.willContinue === true) {
			session.continuing = true;
			return;
		}
		const last = lastAssistant(event.messages);
		const failed = last?.stopReason === "error" || last?.stopReason === "aborted";
		session.recorder.endPrompt(Date.now(), {
			output: last ? textOf(last.content) || undefined : undefined,
			level: failed ? "ERROR" : undefined,
			statusMessage: failed ? stringOr(last?.errorMessage) ?? String(last?.stopReason) : undefined,
		});
		runtime.exporter?.sendSoon();
		updateIndicator(runtime, session, ctx);
	});
	on("auto_retry_start", (event, _ctx, session) =>
		session.recorder.event(Date.now(), {
			name: "auto-retry",
			level: "WARNING",
			statusMessage: stringOr(event.errorMessage),
			metadata: { attempt: event.attempt, maxAttempts: event.maxAttempts, delayMs: event.delayMs },
		}),
	);
	on("auto_retry_end", (event, _ctx, session) =>
		session.recorder.event(Date.now(), {
			name: event.success === true ? "auto-retry succeeded" : "auto-retry gave up",
			level: event.success === true ? "DEFAULT" : "ERROR",
			statusMessage: stringOr(event.finalError),
			metadata: { attempt: event.attempt, success: event.success },
		}),
	);
	// A compaction is one span from auto_compaction_start (or, for a manual /compact, session_compact
	// alone) to its end. A skipped one records nothing; outside a prompt it gets a trace of its own.
	on("auto_compaction_start", (event, _ctx, session) => {
		session.compaction = { startedAt: Date.now(), reason: event.reason, action: event.action };
	});
	on("session_compact", (event, _ctx, session) => {
		const entry = event.compactionEntry ?? {};
		recordCompaction(
			session,
			{ output: entry.summary, metadata: { tokensBefore: entry.tokensBefore, tokensAfter: entry.tokensAfter, method: entry.method, fromExtension: event.fromExtension } },
			stringOr(entry.id),
		);
	});
	on("auto_compaction_end", (event, _ctx, session) => {
		if (!session.compaction) return;
		const error = stringOr(event.errorMessage);
		if (error) recordCompaction(session, { level: "WARNING", statusMessage: error, metadata: { aborted: event.aborted } });
		session.compaction = undefined;
	});
	for (const name of ["ttsr_triggered", "todo_reminder", "credential_disabled", "retry_fallback_applied", "retry_fallback_succeeded"]) {
		on(name, (event, _ctx, session) =>
			session.recorder.event(Date.now(), { name: name.replace(/_/g, " "), level: name === "credential_disabled" ? "WARNING" : undefined, metadata: eventFields(event) }),
		);
	}
	on("goal_updated", (event, _ctx, session) => session.recorder.rename(stringOr(event.goal?.objective)));
	on("session_shutdown", (_event, ctx, session) => {
		session.recorder.close(Date.now());
		session.unsubscribe?.();
		if (call(() => ctx.hasUI) === true) runtime.log.notify = undefined;
		clearIndicator(runtime, ctx);
		releaseSession(runtime, self, session.recorder.info.sessionId);
		forgetSession(session.recorder.info.sessionId);
		// the host awaits this hook: the final flush (and its redaction) starts after it has returned
		const exporter = runtime.exporter;
		return exporter && new Promise<void>(resolve => setTimeout(resolve, 0)).then(() => exporter.shutdown());
	});

	if (typeof pi.registerCommand === "function") {
		try {
			pi.registerCommand("langfuse", {
				description: "Langfuse tracing: status, link to the current trace; `/langfuse test|off|on`",
				handler: guarded(log, "/langfuse", (args: unknown, ctx: unknown) => langfuseCommand(runtime, typeof args === "string" ? args.trim() : "", ctx, sessionFor(ctx))),
			});
		} catch (error) {
			log.debug(`could not register /langfuse: ${errorText(error)}`);
		}
	}
}

/** The prompt agent_start announced, with ids from its user message's timestamp (none: random ids), and its first turn. */
function openPiPrompt(session: PiSession, userTimestamp?: number): void {
	const start = session.pendingStart;
	if (!start) return;
	session.pendingStart = undefined;
	session.ids = userTimestamp === undefined ? undefined : piIds(session.recorder.info.sessionId, String(userTimestamp));
	session.turns = 0;
	session.recorder.startPrompt(start.at, { input: start.input, metadata: start.metadata, traceId: session.ids?.traceId, id: session.ids?.observation("prompt", String(userTimestamp)) });
	const turn = session.pendingTurn;
	session.pendingTurn = undefined;
	if (turn) startPiTurn(session, turn.at, turn.index);
}

function startPiTurn(session: PiSession, at: number, index: number | undefined): void {
	// pi sends a turn's before_provider_request before turn_start (even before the previous turn_end)
	session.recorder.startTurn(at, {
		id: session.ids?.observation("turn", String(session.turns++)),
		name: index === undefined ? "turn" : `turn ${index}`,
		metadata: { turnIndex: index },
		adoptOpenCalls: true,
	});
}

/** `entryId`: the session file's compaction entry, whose id the import gives the same span. */
function recordCompaction(session: PiSession, end: EndOptions, entryId?: string): void {
	const recorder = session.recorder;
	const now = Date.now();
	const started = session.compaction?.recorded ? now : session.compaction?.startedAt ?? now;
	const standalone = !recorder.promptOpen;
	if (standalone) recorder.startPrompt(started, { input: "compaction" });
	const id = entryId && !standalone ? session.ids?.observation("compaction", entryId) : undefined;
	recorder.startSpan("compaction", started, { id, name: "compaction", input: session.compaction && { reason: session.compaction.reason, action: session.compaction.action } });
	recorder.endSpan("compaction", now, end);
	if (standalone) recorder.endPrompt(now);
	if (session.compaction) session.compaction.recorded = true;
}

function startPiSession(runtime: Runtime, sessionId: string, ctx: PiContext): PiSession {
	const hostPackage = (runtime.hostPackage ??= findHostPackage());
	const host = hostPackage?.name.includes("oh-my-pi") ? "omp" : hostPackage ? "pi" : "Bun" in globalThis ? "omp" : "pi";
	const sessionFile = call(() => ctx.sessionManager?.getSessionFile?.());
	if (typeof sessionFile === "string") runtime.sessionFiles.set(sessionFile, sessionId);
	const header = call(() => ctx.sessionManager?.getHeader?.());
	const parentFile = stringOr(header?.parentSession);
	const parentSessionId = parentFile ? runtime.sessionFiles.get(parentFile) : undefined;
	const startedMs = Date.parse(String(header?.timestamp));
	const recorder = newRecorder(
		runtime,
		{
			sessionId,
			// grouped by session, a later process re-sends the session's root: same start, same input
			startedMs: Number.isFinite(startedMs) ? startedMs : undefined,
			firstPrompt: runtime.config.grouping === "session" ? piFirstPrompt(ctx) : undefined,
			host,
			metadata: {
				host,
				hostVersion: hostPackage?.version,
				cwd: stringOr(call(() => ctx.cwd)) ?? process.cwd(),
				sessionFile,
				parentSessionId,
				parentSessionFile: parentFile,
				mode: call(() => ctx.mode),
			},
		},
		parentFile ? ["subagent"] : [],
	);
	const session: PiSession = { recorder, continuing: false, generations: 0, endedTools: new Set(), paused: false, ctx, turns: 0 };
	session.unsubscribe = runtime.exporter?.onChange(() => updateIndicator(runtime, session, session.ctx));
	if (call(() => ctx.hasUI) === true) runtime.log.notify = line => ctx.ui?.notify?.(line, "warning");
	runtime.log.debug(`tracing ${host} session ${sessionId}${parentSessionId ? ` (subagent of ${parentSessionId})` : ""}`);
	return session;
}

/** The first user message of a resumed session (once per session, only when traces group by session). */
function piFirstPrompt(ctx: PiContext): string | undefined {
	const entries = call(() => ctx.sessionManager?.getEntries?.());
	if (!Array.isArray(entries)) return undefined;
	for (const entry of entries) {
		if (entry?.type === "message" && entry.message?.role === "user") return textOf(entry.message.content) || undefined;
	}
	return undefined;
}

function assistantGeneration(message: PiMessage, ctx: PiContext): GenerationEnd {
	const usage = message.usage ?? {};
	const cost = usage.cost ?? {};
	const failed = message.stopReason === "error" || message.stopReason === "aborted";
	const timestamp = finite(message.timestamp);
	const ttft = finite(message.ttft);
	return {
		model: stringOr(message.model) ?? stringOr(call(() => ctx.model?.id)),
		output: chatOutput(message.content),
		usage: usageDetails({
			input: usage.input,
			output: usage.output,
			cacheRead: usage.cacheRead,
			cacheWrite: usage.cacheWrite,
			total: usage.totalTokens,
		}),
		cost: costDetails({ input: cost.input, output: cost.output, cacheRead: cost.cacheRead, cacheWrite: cost.cacheWrite, total: cost.total }),
		level: failed ? "ERROR" : undefined,
		statusMessage: failed ? stringOr(message.errorMessage) ?? String(message.stopReason) : undefined,
		// omp measures time to first token itself; used when no streamed delta was seen
		completionStartMs: timestamp !== undefined && ttft !== undefined ? timestamp + ttft : undefined,
		metadata: {
			provider: message.provider,
			api: message.api,
			stopReason: message.stopReason,
			responseId: message.responseId,
			durationMs: message.duration,
			ttftMs: message.ttft,
			errorStatus: message.errorStatus,
		},
	};
}

function lastAssistant(messages: unknown): PiMessage | undefined {
	if (!Array.isArray(messages)) return undefined;
	for (let index = messages.length - 1; index >= 0; index--) if (messages[index]?.role === "assistant") return messages[index] as PiMessage;
	return undefined;
}

/** An informational event's own fields, as metadata. */
function eventFields(event: PiEvent): Metadata {
	const fields: Metadata = {};
	let count = 0;
	for (const key in event) {
		if (key === "type") continue;
		if (++count > 50) break;
		fields[key] = call(() => (event as Record<string, unknown>)[key]);
	}
	return fields;
}

// ── §7.2 OpenCode ─────────────────────────────────────────────────────────────────────────────────
//
// OpenCode calls the default export once per plugin instance and gets a hooks object back. Each hook
// is a thin guarded call into the module-level functions below, which work on two kinds of state:
// OcPlugin (one per instance: its sessions, its project) and OcSession (one per traced session).
// Bus events are dispatched by type through OC_EVENTS.

// What we read of OpenCode's payloads: shapes as observed in test/fixtures/opencode-*.jsonl (recorded from
// opencode-ai 1.18.33). Every field is optional: nothing OpenCode passes is trusted to be there.

/** The plugin factory's input (the fixtures' `__factory__` line): shape as observed in test/fixtures. */
interface OcPluginInput { directory?: string; worktree?: string; project?: { id?: string } }
/** A bus event `{id, type, properties}`: shape as observed in test/fixtures. */
interface OcEvent { type?: string; properties?: OcEventProperties }
/** Every `properties` field a handler reads (session.* carry an OcSessionInfo, message.updated an OcMessageInfo): shape as observed in test/fixtures. */
interface OcEventProperties {
	sessionID?: string;
	messageID?: string;
	info?: OcSessionInfo & OcMessageInfo;
	part?: OcPart;
	status?: OcStatus;
	error?: OcError;
}
/** session.status `{type: "busy" | "idle" | "retry", …}`: shape as observed in test/fixtures. */
interface OcStatus { type?: string; message?: string; attempt?: number; next?: number }
/** A session: shape as observed in test/fixtures. */
interface OcSessionInfo { id?: string; parentID?: string; title?: string; version?: string; time?: { created?: unknown } }
/** A message (parentID: the user message an assistant message answers): shape as observed in test/fixtures. */
interface OcMessageInfo {
	id?: string;
	sessionID?: string;
	role?: string;
	agent?: string;
	mode?: string;
	modelID?: string;
	providerID?: string;
	parentID?: string;
	time?: { created?: number; completed?: number };
	tokens?: OcTokens;
	cost?: number;
	finish?: string;
	error?: OcError;
}
/** Tokens on messages and step-finish parts: shape as observed in test/fixtures. */
interface OcTokens { input?: number; output?: number; reasoning?: number; total?: number; cache?: { read?: number; write?: number } }
/** `{name, data: {message}}`, or a plain string: shape as observed in test/fixtures. */
type OcError = string | { name?: string; message?: string; data?: { message?: string } };
/** A message part (text, reasoning, tool, step-start, step-finish, retry, file): shape as observed in test/fixtures. */
interface OcPart {
	id?: string;
	type?: string;
	sessionID?: string;
	messageID?: string;
	text?: string;
	synthetic?: boolean;
	tool?: string;
	callID?: string;
	state?: OcToolState;
	tokens?: OcTokens;
	cost?: number;
	attempt?: number;
	error?: OcError;
	mime?: string;
	filename?: string;
}
/** A tool part's state, pending → running → completed | error: shape as observed in test/fixtures. */
interface OcToolState {
	status?: string;
	input?: unknown;
	output?: unknown;
	error?: unknown;
	title?: string;
	metadata?: Record<string, unknown> & { sessionId?: string; exit?: number };
	time?: { start?: number; end?: number };
}
/** chat.message's input and output: shape as observed in test/fixtures. */
interface OcChatMessageInput { sessionID?: string; agent?: string; messageID?: string; model?: OcModelRef }
interface OcChatMessageOutput { message?: { id?: string; sessionID?: string; agent?: string; model?: OcModelRef }; parts?: OcPart[] }
interface OcModelRef { providerID?: string; modelID?: string }
/** chat.params' output: the call's settings; `options` also holds the provider's (API key!): shape as observed in test/fixtures. */
type OcChatParams = Record<string, unknown> & { options?: Record<string, unknown> };
/** One message of experimental.chat.messages.transform's output: shape as observed in test/fixtures. */
interface OcRequestMessage { info?: OcMessageInfo; parts?: OcPart[] }

/** One assistant message = one LLM call of the agent loop (OpenCode's title call makes no message). */
interface OcMessage {
	id: string;
	key: string;
	createdMs: number;
	agent?: string;
	model?: string;
	provider?: string;
	/** chat.params time: when the request actually left (the first step also waits for the title call). */
	requestMs?: number;
	modelParameters?: Record<string, string | number | boolean>;
	/** References taken in the awaited transform hooks; converted only in the (unawaited) event handler. */
	requestMessages?: unknown;
	requestSystem?: unknown;
	/** The tool definitions OpenCode had built when the request left (tool.definition hooks). */
	requestTools?: Map<string, OcToolDefinition>;
	started: boolean;
	/** Text, reasoning and tool parts by id (latest version), in the order they appeared. */
	parts: Map<string, OcPart>;
	stepTokens?: OcTokens;
	stepCost: number;
}

interface OcTool {
	callID: string;
	spanId: string;
	traceId?: string;
	name: string;
	messageId?: string;
	startMs: number;
	started: boolean;
	/** A task tool's child session, once OpenCode names it (running state metadata.sessionId). */
	childSessionId?: string;
}

/** One plugin instance (OpenCode may load the plugin more than once; each copy has its own). */
interface OcPlugin {
	runtime: Runtime;
	/** Session id → its state; null = not ours (another copy traces it, or sampled out). */
	sessions: Map<string, OcSession | null>;
	directory: string;
	worktree?: string;
	projectId?: string;
	/** The OpenCode version, from the latest session info: a session first seen without one starts with it. */
	hostVersion?: string;
	/** After dispose the instance is gone; late events (OpenCode saves the session once more) start nothing. */
	disposed: boolean;
	/** tool.definition outputs by tool id (references; read when a generation starts). */
	toolDefinitions: Map<string, OcToolDefinition>;
	/** The config hook's object: its providers' model prices split a message's cost. */
	config?: OcConfig;
}

/** tool.definition output: parameters is an Effect Schema (not JSON); jsonSchema, when set, is JSON Schema. */
interface OcToolDefinition { description?: unknown; jsonSchema?: unknown }
/** The config hook's object, the fields read: per-model prices in dollars per million tokens. */
interface OcConfig { provider?: Record<string, { models?: Record<string, { cost?: { input?: unknown; output?: unknown; cache_read?: unknown; cache_write?: unknown } }> }> }

interface OcSession {
	id: string;
	recorder: SessionRecorder;
	/**
	 * From session info, possibly learned after the claim; recorder.info keeps what was known then and
	 * is never changed: ocTraceMetadata puts what changed since on each prompt.
	 */
	parentId?: string;
	hostVersion?: string;
	title?: string;
	/** Assistant messages in flight; a finished one is removed, so late re-updates are ignored. */
	messages: Map<string, OcMessage>;
	/** The newest assistant message still waiting for its chat.params. */
	awaiting?: OcMessage;
	tools: Map<string, OcTool>;
	turns: number;
	/** The open prompt's ids, from its user message id; undefined when it began without chat.message. */
	ids?: TranscriptIds;
	/** The latest experimental.chat.{messages,system}.transform outputs: the next request's input. */
	pendingMessages?: unknown;
	pendingSystem?: unknown;
	/** session.error during the open prompt: the trace ends with this level and message. */
	promptError?: { level: Level; message: string };
	/** Idle came while an LLM call was still unsaved (a failed call is saved after idle): end when it is. */
	idleTimer?: ReturnType<typeof setTimeout>;
}

/**
 * Ids of an OpenCode prompt from ids its database keeps too (user message, assistant message, tool call),
 * so a session traced live and imported later is one trace. Tools keep the ids they always had.
 */
function ocIds(sessionId: string, userMessageId = ""): TranscriptIds {
	const scope = `opencode:${sessionId}:${userMessageId}`;
	return {
		traceId: hashId(scope, 32),
		observation: (kind, key) => hashId(kind === "tool" ? `opencode-tool:${sessionId}:${key}` : `${scope}:${kind}:${key}`, 16),
	};
}

/** OpenCode's placeholder until the title call answers: "New session - <ISO>" / "Child session - <ISO>". */
const OC_PLACEHOLDER_TITLE = /^(New|Child) session - \d{4}-\d\d-\d\dT/;
/** chat.params output keys kept as model parameters; provider options (API keys!) are never read. */
const OC_PARAM_KEYS = ["temperature", "topP", "topK", "maxOutputTokens"];
const OC_OPTION_KEYS = ["reasoningEffort", "reasoningSummary", "textVerbosity", "serviceTier", "parallelToolCalls", "store"];
const OC_MAX_SESSIONS = 500;
/** How long an idle session waits for its last message to be saved before the trace ends anyway. */
const OC_IDLE_GRACE_MS = 2_000;

/** OpenCode calls the default export with {client, project, directory, …} and needs hooks back. */
function attachOpenCode(input: OcPluginInput | undefined, runtime: Runtime): Record<string, unknown> {
	if (!runtime.exporter) return {};
	const plugin: OcPlugin = {
		runtime,
		sessions: new Map(),
		directory: call(() => (typeof input?.directory === "string" ? input.directory : undefined)) ?? process.cwd(),
		worktree: call(() => (typeof input?.worktree === "string" ? input.worktree : undefined)),
		projectId: call(() => (typeof input?.project?.id === "string" ? input.project.id : undefined)),
		disposed: false,
		toolDefinitions: new Map(),
	};
	const { log } = runtime;
	return {
		event: guarded(log, "opencode event", (arg?: { event?: OcEvent }) => ocOnEvent(plugin, arg?.event)),
		// awaited inline by OpenCode: O(1) bookkeeping only
		"chat.message": guarded(log, "chat.message", (hookInput?: OcChatMessageInput, output?: OcChatMessageOutput) => ocOnChatMessage(plugin, hookInput, output)),
		"chat.params": guarded(log, "chat.params", (hookInput?: { sessionID?: string; agent?: string }, output?: OcChatParams) => ocOnChatParams(plugin, hookInput, output)),
		"experimental.chat.messages.transform": guarded(log, "experimental.chat.messages.transform", (_hookInput: unknown, output?: { messages?: OcRequestMessage[] }) =>
			ocOnMessagesTransform(plugin, output),
		),
		"experimental.chat.system.transform": guarded(log, "experimental.chat.system.transform", (hookInput?: { sessionID?: string }, output?: { system?: string[] }) =>
			ocOnSystemTransform(plugin, hookInput, output),
		),
		// awaited too: a reference kept, nothing more
		"tool.definition": guarded(log, "tool.definition", (hookInput?: { toolID?: string }, output?: OcToolDefinition) => {
			if (typeof hookInput?.toolID === "string" && output && typeof output === "object") plugin.toolDefinitions.set(hookInput.toolID, output);
		}),
		config: guarded(log, "config", (config?: OcConfig) => {
			if (config && typeof config === "object") plugin.config = config;
		}),
		dispose: guarded(log, "dispose", () => ocDispose(plugin)),
	};
}

// ── sessions: claim on first sight, forget at the end ──

/** The session's state, claimed on first sight; null = not ours (another copy, sampled out). */
function ocSessionFor(plugin: OcPlugin, sessionId: unknown, info?: OcSessionInfo): OcSession | null {
	const { runtime, sessions } = plugin;
	const { log, config } = runtime;
	if (typeof sessionId !== "string" || !sessionId) return null;
	const known = sessions.get(sessionId);
	if (known !== undefined || plugin.disposed) return known ?? null;
	const parentId = typeof info?.parentID === "string" ? info.parentID : undefined;
	const parent = parentId ? sessions.get(parentId) : undefined;
	// A subagent is traced exactly when its parent is, so a sampled trace tree is never half there.
	const traced = parent !== undefined ? parent !== null : sampled(config, sessionId);
	if (!claimSession(runtime, plugin, sessionId, traced)) {
		sessions.set(sessionId, null);
		ocEvictSessions(plugin);
		return null;
	}
	if (typeof info?.version === "string") plugin.hostVersion = info.version;
	const { hostVersion, directory } = plugin;
	const recorder = newRecorder(
		runtime,
		{
			sessionId,
			host: "opencode",
			hostVersion,
			cwd: directory,
			// grouped by session, every process re-sends the session's root with this start
			startedMs: finite(info?.time?.created),
			metadata: { host: "opencode", hostVersion, cwd: directory, worktree: plugin.worktree, projectId: plugin.projectId, parentSessionId: parentId },
		},
		parentId ? ["subagent"] : [],
	);
	const session: OcSession = { id: sessionId, recorder, parentId, hostVersion, messages: new Map(), tools: new Map(), turns: 0 };
	sessions.set(sessionId, session);
	ocEvictSessions(plugin);
	log.debug(`tracing opencode session ${sessionId}${parentId ? ` (subagent of ${parentId})` : ""}`);
	return session;
}

/** A long-running `opencode serve` sees many sessions: forget the oldest idle ones. */
function ocEvictSessions(plugin: OcPlugin): void {
	const { sessions } = plugin;
	if (sessions.size <= OC_MAX_SESSIONS) return;
	for (const [id, session] of sessions) {
		if (sessions.size <= OC_MAX_SESSIONS * 0.9) break;
		if (session?.recorder.promptOpen) continue;
		ocForget(plugin, id);
	}
}

function ocForget(plugin: OcPlugin, sessionId: string): void {
	const { runtime, sessions } = plugin;
	const session = sessions.get(sessionId);
	sessions.delete(sessionId);
	if (session) releaseSession(runtime, plugin, sessionId);
}

/**
 * recorder.info is set once, at the claim; what session info taught us since (OpenCode's version, the
 * parent of a session first seen without it) rides along on every trace as prompt metadata.
 */
function ocTraceMetadata(session: OcSession): Metadata {
	const known = session.recorder.info.metadata;
	const metadata: Metadata = {};
	if (session.hostVersion !== known.hostVersion) metadata.hostVersion = session.hostVersion;
	if (session.parentId !== known.parentSessionId) metadata.parentSessionId = session.parentId;
	return metadata;
}

/**
 * The session's recorder with a prompt open. A recorder call outside a prompt would open one by
 * itself, without the session's trace metadata; opening it here keeps a late-learned version or parent.
 */
function ocPromptRecorder(session: OcSession, at: number): SessionRecorder {
	if (session.recorder.promptOpen) return session.recorder;
	session.ids = undefined;
	session.recorder.startPrompt(at, { metadata: ocTraceMetadata(session) });
	return session.recorder;
}

// ── hooks awaited inline by OpenCode: O(1) bookkeeping only ──

function ocOnChatMessage(plugin: OcPlugin, hookInput: OcChatMessageInput | undefined, output: OcChatMessageOutput | undefined): void {
	const session = ocSessionFor(plugin, hookInput?.sessionID ?? output?.message?.sessionID);
	if (!session) return;
	const text = ocPromptText(output?.parts);
	if (session.idleTimer) ocFinishPrompt(plugin, session);
	if (session.recorder.promptOpen) {
		// Sent while the agent is busy: OpenCode feeds it into the running loop, so it joins that trace.
		return session.recorder.event(Date.now(), { name: "user message", input: text });
	}
	const message = output?.message ?? {};
	const model = hookInput?.model ?? message.model ?? {};
	session.promptError = undefined;
	session.turns = 0;
	const userMessageId = stringOr(hookInput?.messageID) ?? stringOr(message.id);
	session.ids = userMessageId ? ocIds(session.id, userMessageId) : undefined;
	session.recorder.startPrompt(Date.now(), {
		traceId: session.ids?.traceId,
		id: userMessageId && session.ids?.observation("prompt", userMessageId),
		input: text,
		metadata: {
			...ocTraceMetadata(session),
			agent: hookInput?.agent ?? message.agent,
			model: model.modelID,
			provider: model.providerID,
			userMessageId,
			...ocSubagentLink(plugin, session),
		},
	});
}

function ocOnChatParams(plugin: OcPlugin, hookInput: { sessionID?: string; agent?: string } | undefined, output: OcChatParams | undefined): void {
	const session = plugin.sessions.get(hookInput?.sessionID as string);
	const message = session?.awaiting;
	// The title call (agent "title") and other side calls create no message: not a generation.
	if (!session || !message || hookInput?.agent !== message.agent) return;
	session.awaiting = undefined;
	message.requestMs = Date.now();
	message.modelParameters = ocModelParameters(output);
	message.requestMessages = session.pendingMessages;
	message.requestSystem = session.pendingSystem;
	message.requestTools = plugin.toolDefinitions;
	session.pendingMessages = session.pendingSystem = undefined;
}

function ocOnMessagesTransform(plugin: OcPlugin, output: { messages?: OcRequestMessage[] } | undefined): void {
	const messages = output?.messages;
	if (!Array.isArray(messages) || messages.length === 0) return;
	const session = plugin.sessions.get(messages[messages.length - 1]?.info?.sessionID as string);
	if (session) session.pendingMessages = messages;
}

function ocOnSystemTransform(plugin: OcPlugin, hookInput: { sessionID?: string } | undefined, output: { system?: string[] } | undefined): void {
	const session = plugin.sessions.get(hookInput?.sessionID as string);
	if (session) session.pendingSystem = output?.system;
}

// ── the event stream (not awaited) ──

/** OpenCode bus event type → its handler; other types are ignored. */
const OC_EVENTS: Record<string, (plugin: OcPlugin, properties: OcEventProperties) => void> = {
	"message.part.delta": (plugin, properties) => {
		// Per streamed delta: two map look-ups, nothing else.
		const session = plugin.sessions.get(properties.sessionID as string);
		if (session) session.recorder.markFirstToken(`msg:${properties.messageID}`, Date.now());
	},
	"message.part.updated": (plugin, properties) => ocOnPart(plugin, properties.part),
	"message.updated": (plugin, properties) => ocOnMessage(plugin, properties.info),
	"session.created": (plugin, properties) => ocOnSessionInfo(plugin, properties.info),
	"session.updated": (plugin, properties) => ocOnSessionInfo(plugin, properties.info),
	"session.status": (plugin, properties) => {
		if (properties.status?.type === "idle") return ocOnIdle(plugin, properties.sessionID);
		if (properties.status?.type === "retry") return ocOnRetry(plugin, properties.sessionID, properties.status);
	},
	"session.idle": (plugin, properties) => ocOnIdle(plugin, properties.sessionID),
	"session.error": (plugin, properties) => ocOnSessionError(plugin, properties),
	"session.compacted": (plugin, properties) => {
		const session = plugin.sessions.get(properties.sessionID as string);
		if (session?.recorder.promptOpen) session.recorder.event(Date.now(), { name: "compacted" });
	},
	"session.deleted": (plugin, properties) => {
		const id = properties.info?.id ?? properties.sessionID;
		plugin.sessions.get(id as string)?.recorder.close(Date.now());
		if (typeof id === "string") ocForget(plugin, id);
	},
};

function ocOnEvent(plugin: OcPlugin, event: OcEvent | undefined): void {
	const properties = event?.properties ?? {};
	const type = event?.type;
	if (typeof type === "string" && Object.hasOwn(OC_EVENTS, type)) OC_EVENTS[type]!(plugin, properties);
}

function ocOnSessionInfo(plugin: OcPlugin, info: OcSessionInfo | undefined): void {
	if (!info || typeof info.id !== "string") return;
	const session = ocSessionFor(plugin, info.id, info);
	if (!session) return;
	if (typeof info.version === "string") plugin.hostVersion = session.hostVersion = info.version;
	if (typeof info.parentID === "string" && !session.parentId) session.parentId = info.parentID;
	const title = typeof info.title === "string" ? info.title.trim() : "";
	if (title && title !== session.title && !OC_PLACEHOLDER_TITLE.test(title)) {
		session.title = title;
		// OpenCode generates the title alongside the first LLM call: it may come after a quick answer
		session.recorder.rename(title, { includeLast: true });
	}
}

function ocOnMessage(plugin: OcPlugin, info: OcMessageInfo | undefined): void {
	if (info?.role !== "assistant" || typeof info.id !== "string") return;
	const session = ocSessionFor(plugin, info.sessionID);
	if (!session) return;
	let message = session.messages.get(info.id);
	if (!message) {
		// A message first seen completed is an old one being re-saved (compaction, summaries): skip.
		if (info.time?.completed) return;
		const createdMs = typeof info.time?.created === "number" ? info.time.created : Date.now();
		message = { id: info.id, key: `msg:${info.id}`, createdMs, agent: info.agent ?? info.mode, started: false, parts: new Map(), stepCost: 0 };
		message.model = info.modelID;
		message.provider = info.providerID;
		session.messages.set(info.id, message);
		session.awaiting = message;
		ocPromptRecorder(session, createdMs).startTurn(createdMs, { id: session.ids?.observation("turn", info.id), name: `turn ${session.turns++}`, metadata: { messageId: info.id, agent: message.agent } });
		return;
	}
	message.model = info.modelID ?? message.model;
	message.provider = info.providerID ?? message.provider;
	if (info.time?.completed || info.error) ocEndMessage(plugin, session, message, info);
}

function ocOnPart(plugin: OcPlugin, part: OcPart | undefined): void {
	if (!part || typeof part.messageID !== "string") return;
	const session = plugin.sessions.get(part.sessionID as string);
	if (!session) return;
	const message = session.messages.get(part.messageID);
	if (part.type === "tool") {
		if (message) message.parts.set(part.id as string, part);
		return ocOnToolPart(session, part, message);
	}
	if (!message) return;
	switch (part.type) {
		case "text":
		case "reasoning":
			message.parts.set(part.id as string, part);
			return ocStartGeneration(session, message);
		case "step-start":
			return ocStartGeneration(session, message);
		case "step-finish":
			message.stepTokens = part.tokens;
			if (typeof part.cost === "number") message.stepCost += part.cost;
			return;
		case "retry": {
			const now = Date.now();
			return ocPromptRecorder(session, now).event(now, { name: "retry", level: "WARNING", statusMessage: ocErrorMessage(part.error), metadata: { attempt: part.attempt } });
		}
	}
}

function ocOnToolPart(session: OcSession, part: OcPart, message: OcMessage | undefined): void {
	const state = part.state ?? {};
	const callID = (typeof part.callID === "string" ? part.callID : part.id) as string;
	const known = session.tools.get(callID);
	// Completed parts of messages no longer in flight are re-saves (e.g. compaction pruning outputs).
	if (!known && !message) return;
	const tool = known ?? ocToolEntry(session, callID, String(part.tool ?? "tool"), part.messageID, Date.now());
	if (typeof state.metadata?.sessionId === "string" && state.metadata.sessionId !== session.id) tool.childSessionId = state.metadata.sessionId;
	const startMs = typeof state.time?.start === "number" ? state.time.start : tool.startMs;
	if (state.status === "pending") return;
	ocStartTool(session, tool, startMs, state.input);
	if (state.status !== "completed" && state.status !== "error") return;
	const endMs = typeof state.time?.end === "number" ? state.time.end : Date.now();
	const exit = state.metadata?.exit;
	// bash reports a failing command as completed with its exit code; pi and omp call that an error
	// bash reports a failing command as completed with its exit code; the kit calls that an error
	ocPromptRecorder(session, endMs).endTool(
		`tool:${callID}`,
		endMs,
		toolEnd({
			name: tool.name,
			output: state.status === "error" ? state.error : state.output,
			error: state.status === "error" ? state.error ?? "tool failed" : undefined,
			exitCode: typeof exit === "number" ? exit : undefined,
			metadata: { ...ocToolMetadata(state.metadata), title: state.title, status: state.status, childSessionId: tool.childSessionId },
		}),
	);
	session.tools.delete(callID);
}

function ocToolEntry(session: OcSession, callID: string, name: string, messageId: string | undefined, at: number): OcTool {
	let tool = session.tools.get(callID);
	if (!tool) {
		tool = { callID, name, messageId, startMs: at, started: false, spanId: ocIds(session.id).observation("tool", callID) };
		session.tools.set(callID, tool);
	}
	return tool;
}

function ocStartTool(session: OcSession, tool: OcTool, at: number, args: unknown): void {
	if (tool.started) return;
	tool.started = true;
	ocPromptRecorder(session, at).startTool(`tool:${tool.callID}`, at, {
		name: tool.name,
		id: tool.spanId,
		input: args,
		metadata: { callID: tool.callID, messageId: tool.messageId },
	});
	tool.traceId = session.recorder.traceId;
}

/** The generation starts when the request is under way (step-start), with the request it sent. */
function ocStartGeneration(session: OcSession, message: OcMessage): void {
	if (message.started) return;
	message.started = true;
	if (session.awaiting === message) session.awaiting = undefined;
	const at = message.requestMs ?? message.createdMs;
	ocPromptRecorder(session, at).startGeneration(message.key, at, {
		id: session.ids?.observation("llm", message.id),
		model: message.model,
		modelParameters: message.modelParameters,
		input: ocRequestInput(message.requestSystem, message.requestMessages, message.requestTools),
		metadata: { provider: message.provider, agent: message.agent, messageId: message.id },
	});
	message.requestMessages = message.requestSystem = message.requestTools = undefined;
}

function ocEndMessage(plugin: OcPlugin, session: OcSession, message: OcMessage, info: OcMessageInfo): void {
	ocStartGeneration(session, message);
	session.messages.delete(message.id);
	if (session.awaiting === message) session.awaiting = undefined;
	const endMs = typeof info.time?.completed === "number" ? info.time.completed : Date.now();
	const tokens: OcTokens = info.tokens && ocTokenSum(info.tokens) > 0 ? info.tokens : message.stepTokens ?? info.tokens ?? {};
	const cost = typeof info.cost === "number" && info.cost > 0 ? info.cost : message.stepCost;
	const error = info.error;
	const errorName = typeof error === "object" ? error?.name : undefined;
	const aborted = errorName === "MessageAbortedError";
	const output = ocOutput(message.parts);
	session.recorder.endGeneration(message.key, endMs, {
		model: info.modelID,
		output,
		usage: usageDetails({
			input: tokens.input,
			output: tokens.output,
			reasoning: tokens.reasoning,
			cacheRead: tokens.cache?.read,
			cacheWrite: tokens.cache?.write,
			total: typeof tokens.total === "number" ? tokens.total : ocTokenSum(tokens),
		}),
		cost: ocCost(plugin.config, info, tokens, cost),
		level: error ? (aborted ? "WARNING" : "ERROR") : undefined,
		statusMessage: error ? ocErrorMessage(error) : undefined,
		metadata: { provider: info.providerID, finish: info.finish, mode: info.mode, parentMessageId: info.parentID, errorName },
	});
	session.recorder.noteOutput(textOf([...message.parts.values()]) || undefined);
	session.recorder.endTurn(endMs, { output: info.finish === undefined ? undefined : { finish: info.finish } });
	if (session.idleTimer && session.messages.size === 0) ocFinishPrompt(plugin, session);
}

function ocOnIdle(plugin: OcPlugin, sessionId: unknown): void {
	const session = plugin.sessions.get(sessionId as string);
	if (!session || session.idleTimer) return;
	if (session.messages.size > 0 && session.recorder.promptOpen) {
		session.idleTimer = setTimeout(
			guarded(plugin.runtime.log, "opencode idle", () => ocFinishPrompt(plugin, session)),
			OC_IDLE_GRACE_MS,
		);
		session.idleTimer.unref?.();
		return;
	}
	ocFinishPrompt(plugin, session);
}

function ocFinishPrompt(plugin: OcPlugin, session: OcSession): void {
	clearTimeout(session.idleTimer);
	session.idleTimer = undefined;
	const error = session.promptError;
	session.promptError = undefined;
	session.recorder.endPrompt(Date.now(), error ? { level: error.level, statusMessage: error.message } : {});
	// the prompt is over: nothing of it stays (a side call's transform output, e.g. the title call's, is never consumed)
	session.ids = undefined;
	session.messages.clear();
	session.tools.clear();
	session.awaiting = undefined;
	session.pendingMessages = session.pendingSystem = undefined;
	plugin.runtime.exporter?.sendSoon();
}

function ocOnRetry(plugin: OcPlugin, sessionId: unknown, status: OcStatus): void {
	const session = plugin.sessions.get(sessionId as string);
	if (!session?.recorder.promptOpen) return;
	session.recorder.event(Date.now(), {
		name: "retry",
		level: "WARNING",
		statusMessage: typeof status.message === "string" ? status.message : undefined,
		metadata: { attempt: status.attempt, nextMs: status.next },
	});
}

function ocOnSessionError(plugin: OcPlugin, properties: OcEventProperties): void {
	const session = plugin.sessions.get(properties.sessionID as string);
	if (!session) return;
	const error = properties.error;
	const errorName = typeof error === "object" ? error?.name : undefined;
	const level: Level = errorName === "MessageAbortedError" ? "WARNING" : "ERROR";
	const message = ocErrorMessage(error) ?? "session error";
	session.promptError = { level, message };
	const now = Date.now();
	ocPromptRecorder(session, now).event(now, { name: errorName === "MessageAbortedError" ? "aborted" : "session error", level, statusMessage: message, metadata: { errorName } });
}

/** A subagent's trace names the parent's trace and the task tool call that spawned it. */
function ocSubagentLink(plugin: OcPlugin, session: OcSession): Metadata {
	if (!session.parentId) return {};
	const parent = plugin.sessions.get(session.parentId);
	let task: OcTool | undefined;
	for (const tool of parent?.tools.values() ?? []) {
		if (tool.childSessionId === session.id) task = tool;
		else if (!task && tool.name === "task" && !tool.childSessionId) task = tool;
	}
	return { parentSessionId: session.parentId, parentTraceId: task?.traceId ?? parent?.recorder.traceId, parentObservationId: task?.spanId };
}

async function ocDispose(plugin: OcPlugin): Promise<void> {
	plugin.disposed = true;
	const now = Date.now();
	for (const [id, session] of plugin.sessions) {
		if (!session) continue;
		clearTimeout(session.idleTimer);
		session.recorder.close(now, session.promptError && { level: session.promptError.level, statusMessage: session.promptError.message });
		ocForget(plugin, id);
	}
	// OpenCode awaits dispose: the final flush (and its redaction) starts after the hook has returned
	await new Promise<void>(resolve => setTimeout(resolve, 0));
	await plugin.runtime.exporter?.shutdown();
}

// ── OpenCode payloads → record fields (pure) ──

/** The user's words: the text parts that are not synthetic (file contents OpenCode inlines). */
function ocPromptText(parts: unknown): string | undefined {
	if (!Array.isArray(parts)) return undefined;
	const texts = (parts as OcPart[]).filter(part => part?.type === "text" && typeof part.text === "string");
	const typed = texts.filter(part => !part.synthetic);
	const text = (typed.length ? typed : texts).map(part => part.text).join("\n");
	return text || undefined;
}

/** A tool's own metadata, small: scalars only, minus copies of the output (bash `output`, read `preview`). */
function ocToolMetadata(metadata: unknown): Metadata {
	const out: Metadata = {};
	if (!metadata || typeof metadata !== "object") return out;
	for (const [key, value] of Object.entries(metadata)) {
		if (key === "output" || key === "preview") continue;
		if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") out[key] = value;
	}
	return out;
}

/** The call's settings from chat.params, scalars only; of `options` only OC_OPTION_KEYS (it also holds the API key). */
function ocModelParameters(output: OcChatParams | undefined): Record<string, string | number | boolean> | undefined {
	const parameters: Record<string, string | number | boolean> = {};
	const scalar = (value: unknown) => typeof value === "string" || typeof value === "number" || typeof value === "boolean";
	for (const key of OC_PARAM_KEYS) if (scalar(output?.[key])) parameters[key] = output![key] as string | number | boolean;
	for (const key of OC_OPTION_KEYS) if (scalar(output?.options?.[key])) parameters[key] = output!.options![key] as string | number | boolean;
	return Object.keys(parameters).length ? parameters : undefined;
}

function ocTokenSum(tokens: OcTokens | undefined): number {
	const n = (value: unknown) => (typeof value === "number" && Number.isFinite(value) ? value : 0);
	return n(tokens?.input) + n(tokens?.output) + n(tokens?.reasoning) + n(tokens?.cache?.read) + n(tokens?.cache?.write);
}

function ocErrorMessage(error: OcError | undefined): string | undefined {
	if (!error) return undefined;
	if (typeof error === "string") return oneLine(error, 300);
	const message = error.data?.message ?? error.message ?? error.name;
	return typeof message === "string" ? oneLine(message, 300) : undefined;
}

/** One message's parts as the generation output: its text, or the assistant message with reasoning and tool calls. */
function ocOutput(parts: Map<string, OcPart>): unknown {
	const content: unknown[] = [];
	for (const part of parts.values()) {
		if (part.type === "tool") content.push({ type: "tool_call", name: part.tool, id: part.callID, arguments: part.state?.input });
		else if (typeof part.text === "string" && part.text) content.push({ type: part.type === "reasoning" ? "reasoning" : "text", text: part.text });
	}
	return content.length ? chatOutput(content) : undefined;
}

/** The request a message sent: OpenCode's messages (converted by the exporter, §6), its system prompt and tools. */
function ocRequestInput(system: unknown, messages: unknown, tools: Map<string, OcToolDefinition> | undefined): unknown {
	const definitions = tools?.size
		? [...tools].map(([name, definition]) => ({
				name,
				description: typeof definition.description === "string" ? definition.description : undefined,
				// parameters is an Effect Schema: only a JSON Schema OpenCode gives as such is sent
				parameters: definition.jsonSchema !== null && typeof definition.jsonSchema === "object" && !Array.isArray(definition.jsonSchema) ? definition.jsonSchema : undefined,
			}))
		: undefined;
	if (!Array.isArray(messages) && !Array.isArray(system)) return undefined;
	return new ChatRequest(Array.isArray(messages) ? [...messages] : [], definitions, system);
}

/**
 * OpenCode records one dollar total per message. With the model's prices from the config (dollars per
 * million tokens), the total splits into input, cache and output — only when the split adds up to that
 * total (no pricing tiers at play); otherwise the total alone, never zeros.
 */
function ocCost(config: OcConfig | undefined, info: OcMessageInfo, tokens: OcTokens, total: number): Record<string, number> | undefined {
	const prices = call(() => config?.provider?.[info.providerID ?? ""]?.models?.[info.modelID ?? ""]?.cost);
	const rate = (value: unknown) => (typeof value === "number" && Number.isFinite(value) && value >= 0 ? value / 1e6 : undefined);
	const count = (value: unknown) => (typeof value === "number" && Number.isFinite(value) && value > 0 ? value : 0);
	const input = rate(prices?.input);
	const output = rate(prices?.output);
	if (!prices || input === undefined || output === undefined || !(total > 0)) return costDetails({ total });
	const round = (dollars: number) => Math.round(dollars * 1e12) / 1e12;
	const split = {
		input: round(count(tokens.input) * input),
		cacheRead: round(count(tokens.cache?.read) * (rate(prices.cache_read) ?? 0)),
		cacheWrite: round(count(tokens.cache?.write) * (rate(prices.cache_write) ?? 0)),
		output: round((count(tokens.output) + count(tokens.reasoning)) * output),
	};
	const sum = split.input + split.cacheRead + split.cacheWrite + split.output;
	if (Math.abs(sum - total) > Math.max(1e-9, total * 1e-6)) return costDetails({ total });
	return costDetails({ ...split, cacheRead: split.cacheRead || undefined, cacheWrite: split.cacheWrite || undefined, total });
}

// ── §7.3 Codex ────────────────────────────────────────────────────────────────────────────────────

// Codex keeps no plugin API: `notify` (once per turn) or a Stop hook runs `bun langfuse.ts
// codex-notify|codex-hook`, which reads the thread's rollout file from where the last run stopped
// and records every finished turn through the same recorder, exporter and spool as the hosts.
// Ids are hashes of thread, turn, response and call ids, so a turn read twice is the same trace.

/** Everything a notify or hook run may spend, from process start; Codex waits for it. */
const CODEX_BUDGET_MS = 1_500;

interface CodexThread {
	threadId: string;
	/** Codex's session id: the thread's own id, or for a subagent the id of the thread that spawned it. */
	sessionId: string;
	parentThreadId?: string;
	nickname?: string;
	role?: string;
	depth?: number;
	cliVersion?: string;
	originator?: string;
	provider?: string;
	cwd?: string;
	/** session_meta's timestamp: the session root's start in every run (traces grouped by session). */
	startedMs?: number;
}

/** Per rollout file, in `<spool>/codex/`: where the next run starts and what it must remember. */
interface CodexCursor extends RecordCursor {
	file: string;
	thread?: CodexThread;
	/** Inside history copied from another thread (a fork), which that thread's own rollout reports. */
	copying?: boolean;
}

/**
 * The rollout payload fields read here. A rollout line is `{timestamp, type, payload}`: type session_meta,
 * turn_context, response_item, event_msg, compacted or token_usage_record, i.e. Codex's RolloutItem with
 * ResponseItem / EventMsg payloads (openai/codex, codex-rs/protocol/src/protocol.rs and models.rs). Field
 * names as observed in test/fixtures, recorded from codex-cli 0.169.0 (the pinned devDependency). Every
 * field is optional and checked before use: versions differ, and a missing field is skipped.
 */
interface CodexPayload {
	/** response_item / event_msg kind (message, function_call, task_started, token_count, …). */
	type?: string;
	id?: string;
	thread_id?: string;
	turn_id?: string;
	// session_meta
	session_id?: string;
	parent_thread_id?: string;
	agent_nickname?: string;
	agent_role?: string;
	cli_version?: string;
	originator?: string;
	model_provider?: string;
	cwd?: string;
	source?: { subagent?: { thread_spawn?: { parent_thread_id?: string; agent_nickname?: string; agent_role?: string; depth?: number } } };
	// task_started, task_complete, turn_aborted
	turn_attribution?: { parent_turn_id?: string; turn_trigger?: unknown };
	collaboration_mode_kind?: unknown;
	last_agent_message?: string;
	time_to_first_token_ms?: number;
	duration_ms?: number;
	reason?: string;
	// turn_context
	model?: string;
	effort?: unknown;
	reasoning_effort?: unknown;
	collaboration_mode?: { settings?: { model?: string; reasoning_effort?: unknown } };
	/** turn_context: the reasoning summary setting (a string); reasoning item: its summary parts. */
	summary?: unknown;
	approval_policy?: unknown;
	sandbox_policy?: { type?: unknown };
	// token_usage_record, token_count
	response_id?: string;
	usage?: CodexUsage;
	turn_token_usage?: unknown;
	info?: { last_token_usage?: CodexUsage; total_token_usage?: unknown };
	// item_started, item_completed, user_message, error, stream_error
	item?: CodexItem;
	started_at_ms?: number;
	message?: unknown;
	// response_item: message, reasoning, *_call, *_call_output, web_search_call
	role?: string;
	content?: unknown;
	call_id?: string;
	name?: string;
	namespace?: unknown;
	arguments?: unknown;
	input?: unknown;
	action?: unknown;
	status?: unknown;
	/** A string, or `{content, success}`. */
	output?: unknown;
}

/** Token usage as Codex counts it: cached inside input, reasoning inside output. */
interface CodexUsage {
	input_tokens?: number;
	cached_input_tokens?: number;
	cache_write_input_tokens?: number;
	output_tokens?: number;
	reasoning_output_tokens?: number;
	total_tokens?: number;
}

/** item_completed's item (UserMessage, AgentMessage, Reasoning, CommandExecution, collab calls, …). */
interface CodexItem {
	type?: string;
	id?: string;
	content?: unknown;
	exit_code?: number;
	status?: string;
	command?: unknown;
	duration?: { secs?: number; nanos?: number };
	receiver_thread_ids?: unknown;
}

interface RolloutLine {
	at: number;
	type: string;
	payload: CodexPayload;
	/** Byte offsets of the line in its file: cursor positions and stable event ids. */
	start: number;
	end: number;
}

interface CodexTurn {
	id: string;
	started: RolloutLine;
	lines: RolloutLine[];
	/** task_complete or turn_aborted; absent when the turn was closed by a hook or by the next turn. */
	finish?: RolloutLine;
	/** The notify/hook said this turn is over before the rollout did: its last assistant message. */
	forcedOutput?: string;
}

interface CodexRequest {
	/** The rollout file, or the thread id to find it by. */
	file?: string;
	threadId?: string;
	/** The turn the caller says has finished, with its last assistant message. */
	turnId?: string;
	lastMessage?: string;
}

/** `notify = [..., "codex-notify"]`: Codex appends one JSON argument per finished turn. */
function codexNotifyRequest(args: string[]): CodexRequest | undefined {
	for (let index = args.length - 1; index >= 0; index--) {
		const arg = args[index]!.trim();
		if (!arg.startsWith("{")) continue;
		try {
			const event = JSON.parse(arg);
			if (event?.type !== undefined && event.type !== "agent-turn-complete") return undefined;
			return {
				threadId: stringOr(event["thread-id"] ?? event.thread_id),
				turnId: stringOr(event["turn-id"] ?? event.turn_id),
				lastMessage: stringOr(event["last-assistant-message"] ?? event.last_assistant_message),
			};
		} catch {
			return undefined;
		}
	}
	return undefined;
}

/** hooks.json (Stop and friends): JSON on stdin with transcript_path; Stop runs before task_complete is written. */
function codexHookRequest(text: string): CodexRequest | undefined {
	try {
		const event = JSON.parse(text);
		if (!event || typeof event !== "object") return undefined;
		const stop = event.hook_event_name === "Stop" || event.hook_event_name === "SubagentStop";
		// SubagentStop names the parent's rollout in transcript_path and the child's in agent_transcript_path.
		const subagent = event.hook_event_name === "SubagentStop";
		return {
			file: stringOr(subagent ? event.agent_transcript_path : event.transcript_path),
			threadId: stringOr(subagent ? event.agent_id : (event.session_id ?? event.thread_id)),
			turnId: stop ? stringOr(event.turn_id) : undefined,
			lastMessage: stop ? stringOr(event.last_assistant_message) : undefined,
		};
	} catch {
		return undefined;
	}
}

function codexHomeDir(env: Env): string {
	return env.CODEX_HOME?.trim() || path.join(env.HOME || os.homedir(), ".codex");
}

/** `$CODEX_HOME/sessions/YYYY/MM/DD/rollout-<time>-<thread id>.jsonl`, newest folders first. */
function findCodexRollout(home: string, threadId: string): string | undefined {
	if (!/^[\w-]{6,200}$/.test(threadId)) return undefined;
	const suffix = `-${threadId}.jsonl`;
	const search = (dir: string, depth: number): string | undefined => {
		let entries: fs.Dirent[];
		try {
			entries = fs.readdirSync(dir, { withFileTypes: true });
		} catch {
			return undefined;
		}
		const file = entries.find(entry => entry.isFile() && entry.name.startsWith("rollout-") && entry.name.endsWith(suffix));
		if (file) return path.join(dir, file.name);
		if (depth === 0) return undefined;
		for (const entry of entries.filter(entry => entry.isDirectory()).sort((a, b) => b.name.localeCompare(a.name))) {
			const found = search(path.join(dir, entry.name), depth - 1);
			if (found) return found;
		}
		return undefined;
	};
	return search(path.join(home, "sessions"), 4) ?? search(path.join(home, "archived_sessions"), 4);
}

/** Complete lines from `offset` on; a line still being written (no newline yet) waits for the next run. */
async function readRolloutLines(file: string, offset: number): Promise<{ lines: RolloutLine[]; size: number; restarted: boolean }> {
	const handle = await fsp.open(file, "r");
	try {
		const { size } = await handle.stat();
		const restarted = size < offset; // replaced or truncated: read it again from the top
		const from = restarted ? 0 : offset;
		const buffer = Buffer.alloc(size - from);
		let filled = 0;
		while (filled < buffer.length) {
			const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, from + filled);
			if (bytesRead === 0) break;
			filled += bytesRead;
		}
		return { lines: rolloutLines(buffer.subarray(0, filled), from), size, restarted };
	} finally {
		await handle.close();
	}
}

/** The complete lines of a rollout chunk that starts at byte `from` of its file. */
function rolloutLines(buffer: Buffer, from: number): RolloutLine[] {
	const lines: RolloutLine[] = [];
	let lastAt = Date.now();
	for (let start = 0, end = buffer.indexOf(10, 0); end >= 0; start = end + 1, end = buffer.indexOf(10, start)) {
		if (end === start) continue;
		let record: { timestamp?: unknown; type?: unknown; payload?: CodexPayload } | null;
		try {
			record = JSON.parse(buffer.toString("utf8", start, end));
		} catch {
			continue; // a corrupt line is skipped, never fatal
		}
		if (!record || typeof record !== "object" || typeof record.type !== "string") continue;
		const at = typeof record.timestamp === "string" ? Date.parse(record.timestamp) : Number.NaN;
		if (Number.isFinite(at)) lastAt = at;
		lines.push({ at: Number.isFinite(at) ? at : lastAt, type: record.type, payload: record.payload ?? {}, start: from + start, end: from + end + 1 });
	}
	return lines;
}

const isTurnStart = (line: RolloutLine) => line.type === "event_msg" && line.payload?.type === "task_started";
const isTurnEnd = (line: RolloutLine) => line.type === "event_msg" && (line.payload?.type === "task_complete" || line.payload?.type === "turn_aborted");

/**
 * Groups lines into turns. A turn is finished by its task_complete / turn_aborted, by the next
 * task_started, or by the caller naming it (the Stop hook runs before Codex writes task_complete).
 * The returned offset is where the first unfinished turn starts: the next run reads from there.
 */
function collectCodexTurns(lines: RolloutLine[], cursor: CodexCursor, request: CodexRequest): { turns: CodexTurn[]; offset: number } {
	const turns: CodexTurn[] = [];
	let offset = cursor.offset;
	let open: CodexTurn | undefined;
	for (const line of lines) {
		if (line.type === "session_meta") {
			const thread = codexThread(line.payload);
			cursor.thread ??= thread;
			// A forked thread starts with a copy of its parent's history, under the parent's session_meta.
			if (thread && thread.threadId !== cursor.thread?.threadId) cursor.copying = true;
			if (!open) offset = line.end;
			continue;
		}
		if (cursor.copying) {
			const own = line.payload?.thread_id !== undefined && line.payload.thread_id === cursor.thread?.threadId;
			if (!own && !(isTurnStart(line) && stringOr(line.payload.turn_attribution?.parent_turn_id))) {
				if (!open) offset = line.end;
				continue;
			}
			cursor.copying = false;
		}
		if (isTurnStart(line)) {
			if (open) turns.push(open); // never finished: recorded as it stands
			const id = stringOr(line.payload.turn_id) ?? `@${line.start}`;
			open = { id, started: line, lines: [] };
			offset = line.start;
			continue;
		}
		if (!open) {
			offset = line.end; // between turns: settings, or the task_complete of a turn a hook already sent
			continue;
		}
		open.lines.push(line);
		if (isTurnEnd(line) && (line.payload.turn_id === undefined || line.payload.turn_id === open.id)) {
			open.finish = line;
			turns.push(open);
			open = undefined;
			offset = line.end;
		}
	}
	if (open && request.turnId === open.id) {
		open.forcedOutput = request.lastMessage;
		turns.push(open);
		offset = open.lines.at(-1)?.end ?? open.started.end;
	}
	const done = new Set(cursor.done);
	return { turns: turns.filter(turn => !done.has(turn.id)), offset };
}

function codexThread(meta: any): CodexThread | undefined {
	const threadId = stringOr(meta?.id);
	if (!threadId) return undefined;
	const spawn = meta.source?.subagent?.thread_spawn ?? {};
	return {
		threadId,
		sessionId: stringOr(meta.session_id) ?? threadId,
		parentThreadId: stringOr(meta.parent_thread_id) ?? stringOr(spawn.parent_thread_id),
		nickname: stringOr(meta.agent_nickname) ?? stringOr(spawn.agent_nickname),
		role: stringOr(meta.agent_role) ?? stringOr(spawn.agent_role),
		depth: typeof spawn.depth === "number" ? spawn.depth : undefined,
		cliVersion: stringOr(meta.cli_version),
		originator: stringOr(meta.originator),
		provider: stringOr(meta.model_provider),
		cwd: stringOr(meta.cwd),
		startedMs: finite(Date.parse(String(meta.timestamp))),
	};
}

const codexTraceId = (threadId: string, turnId: string) => hashId(`codex:${threadId}:${turnId}`, 32);

/** The thread's records, collected. */
function codexRecorder(runtime: Pick<Runtime, "config">, thread: CodexThread, rollout: string, records: Map<string, ObservationRecord>): SessionRecorder {
	const subagent = thread.parentThreadId !== undefined;
	const info: HostSessionInfo = {
		sessionId: thread.sessionId,
		host: "codex",
		hostVersion: thread.cliVersion,
		cwd: thread.cwd,
		// a subagent shares its parent's session: the parent's thread says when that began
		startedMs: subagent ? undefined : thread.startedMs,
		metadata: {
			host: "codex",
			hostVersion: thread.cliVersion,
			threadId: thread.threadId,
			parentThreadId: thread.parentThreadId,
			agentNickname: thread.nickname,
			agentRole: thread.role,
			subagentDepth: thread.depth,
			originator: thread.originator,
			modelProvider: thread.provider,
			rolloutFile: rollout,
		},
	};
	return collectingRecorder(runtime, info, records, subagent ? ["subagent"] : []);
}

/** Context Codex injects as user messages (environment, AGENTS.md, skills), not typed by the user. */
const injectedText = (text: string) => /^\s*(<environment_context>|<user_instructions>|<skills_instructions>|# AGENTS\.md instructions)/.test(text);

function parseJsonText(text: unknown): unknown {
	if (typeof text !== "string") return text;
	try {
		return JSON.parse(text);
	} catch {
		return text;
	}
}

/** Codex counts cached tokens inside input and reasoning inside output; Langfuse's keys must not overlap. */
function codexUsage(usage: CodexUsage | undefined): TokenCounts | undefined {
	if (!usage || typeof usage !== "object") return undefined;
	const count = (value: unknown) => (typeof value === "number" && Number.isFinite(value) && value > 0 ? value : 0);
	const cached = count(usage.cached_input_tokens);
	const cacheWrite = count(usage.cache_write_input_tokens);
	const reasoning = count(usage.reasoning_output_tokens);
	return {
		input: Math.max(0, count(usage.input_tokens) - cached - cacheWrite),
		cacheRead: cached,
		cacheWrite,
		output: Math.max(0, count(usage.output_tokens) - reasoning),
		reasoning,
		total: count(usage.total_tokens) || count(usage.input_tokens) + count(usage.output_tokens),
	};
}

/** A model response being read: it ends at its token record (or the next token_count, or the turn's end). */
interface PendingResponse {
	/** Where its step goes in the turn's steps: before the tool calls it made. */
	at: number;
	input: ChatMessage[];
	text: string[];
	reasoning: string[];
	toolCalls: ChatToolCall[];
	firstTokenAt?: number;
}

const CODEX_TOOL_CALLS = new Set(["function_call", "custom_tool_call", "local_shell_call", "tool_search_call"]);
const CODEX_TOOL_OUTPUTS = new Set(["function_call_output", "custom_tool_call_output", "tool_search_output"]);

/**
 * One finished turn → one RecordedPrompt, pure: the prompt, a step per model response (closed at its
 * token record), a step per tool call (ended by its output), and compactions, web searches and errors.
 */
function parseCodexTurn(turn: CodexTurn, thread: CodexThread): RecordedPrompt {
	const startAt = turn.started.at;
	const started = turn.started.payload;
	const attribution = started.turn_attribution ?? {};
	const finish = turn.finish?.payload ?? {};

	// First pass: what the prompt needs up front, and the items tool results are completed by.
	const userTexts: string[] = [];
	const fallbackTexts: string[] = [];
	const items = new Map<string, CodexItem>();
	let context: CodexPayload = {};
	let hasUsageRecords = false;
	for (const line of turn.lines) {
		const payload = line.payload;
		if (line.type === "turn_context") context = payload;
		else if (line.type === "token_usage_record") hasUsageRecords = true;
		else if (line.type === "event_msg" && payload.type === "item_completed" && payload.item) {
			const item = payload.item;
			if (item.type === "UserMessage") userTexts.push(textOf(item.content));
			else if (typeof item.id === "string") items.set(item.id, item);
		} else if (line.type === "event_msg" && payload.type === "user_message" && typeof payload.message === "string") {
			userTexts.push(payload.message); // rollouts before item events
		} else if (line.type === "response_item" && payload.type === "message" && payload.role === "user") {
			const text = textOf(payload.content);
			if (text && !injectedText(text) && !text.startsWith("<subagent_notification>")) fallbackTexts.push(text);
		}
	}
	const text = (userTexts.length ? userTexts : fallbackTexts).filter(Boolean).join("\n\n");
	const model = stringOr(context.model) ?? stringOr(context.collaboration_mode?.settings?.model);
	const effort = context.effort ?? context.reasoning_effort ?? context.collaboration_mode?.settings?.reasoning_effort;
	const parameters: Record<string, string> = {};
	if (typeof effort === "string") parameters.reasoning_effort = effort;
	if (typeof context.summary === "string") parameters.reasoning_summary = context.summary;
	const parentTurnId = stringOr(attribution.parent_turn_id);
	const ttft = typeof finish.time_to_first_token_ms === "number" ? finish.time_to_first_token_ms : undefined;

	// Second pass, in file order: responses close at their token record, tools at their output.
	const steps: RecordedStep[] = [];
	const openTools = new Map<string, RecordedToolCall>();
	const newResponse = (): PendingResponse => ({ at: steps.length, input: [], text: [], reasoning: [], toolCalls: [] });
	let pending = newResponse();
	let inputAt = startAt;
	let responses = 0;
	let lastTurnUsage: unknown;
	let lastText: string | undefined;
	const hasOutput = () => pending.text.length > 0 || pending.toolCalls.length > 0 || pending.reasoning.length > 0;
	const closeResponse = (at: number, usage: CodexUsage | undefined, responseId?: string) => {
		const index = responses++;
		const firstToken = index === 0 && ttft !== undefined ? startAt + ttft : pending.firstTokenAt;
		const step: RecordedLlmCall = {
			kind: "llm",
			id: responseId ?? String(index),
			startMs: inputAt,
			endMs: Math.max(at, inputAt),
			completionStartMs: firstToken !== undefined && firstToken >= inputAt && firstToken <= at ? firstToken : undefined,
			model,
			provider: thread.provider,
			parameters,
			input: pending.input,
			output: { role: "assistant", content: pending.text.join("\n"), tool_calls: pending.toolCalls.length ? pending.toolCalls : undefined, reasoning: pending.reasoning.join("\n") || undefined },
			usage: codexUsage(usage),
			metadata: { responseId },
		};
		steps.splice(pending.at, 0, step);
		pending = newResponse();
		inputAt = at;
	};
	const event = (line: RolloutLine, name: string, fields: Partial<RecordedEvent> = {}) =>
		steps.push({ kind: "event", id: String(line.start), at: line.at, name, ...fields });
	const compaction = (line: RolloutLine) => steps.push({ kind: "compaction", id: String(line.start), startMs: line.at, endMs: line.at });
	for (const line of turn.lines) {
		const payload = line.payload;
		const at = line.at;
		const type = payload.type ?? "";
		if (line.type === "response_item") {
			if (type === "message") {
				const content = textOf(payload.content);
				if (payload.role === "assistant") {
					if (content) pending.text.push(content);
					if (content) lastText = content;
				} else if (payload.role === "user" && content && !injectedText(content)) {
					pending.input.push({ role: "user", content });
					inputAt = at;
				}
			} else if (type === "reasoning") {
				const summary = Array.isArray(payload.summary) ? payload.summary.map(part => part?.text).filter(Boolean).join("\n") : "";
				if (summary) pending.reasoning.push(summary);
			} else if (CODEX_TOOL_CALLS.has(type)) {
				const callId = stringOr(payload.call_id) ?? stringOr(payload.id) ?? `${line.start}`;
				const name = stringOr(payload.name) ?? type.replace(/_call$/, "");
				const raw = payload.arguments ?? payload.input ?? payload.action;
				pending.toolCalls.push({ id: callId, type: "function", function: { name, arguments: typeof raw === "string" ? raw : JSON.stringify(raw ?? {}) } });
				if (!openTools.has(callId)) {
					const tool: RecordedToolCall = { kind: "tool", id: callId, name, startMs: at, input: parseJsonText(raw), output: undefined, isError: false, metadata: { callId, namespace: payload.namespace, toolType: type } };
					openTools.set(callId, tool);
					steps.push(tool);
				}
			} else if (CODEX_TOOL_OUTPUTS.has(type)) {
				const callId = stringOr(payload.call_id) ?? "";
				const raw = payload.output as { content?: unknown; success?: unknown } | string | undefined;
				const output = raw && typeof raw === "object" && !Array.isArray(raw) && "content" in raw ? raw.content : raw;
				const item = items.get(callId);
				const exitCode =
					typeof item?.exit_code === "number" ? item.exit_code : typeof output === "string" ? Number(output.match(/Process exited with code (-?\d+)/)?.[1] ?? Number.NaN) : Number.NaN;
				let tool = openTools.get(callId);
				openTools.delete(callId);
				if (!tool) {
					// a result whose call is not in this turn: a tool of its own, at the result
					tool = { kind: "tool", id: callId, name: "tool", startMs: at, input: undefined, output: undefined, isError: false };
					steps.push(tool);
				}
				tool.endMs = at;
				tool.output = output;
				tool.isError = (typeof raw === "object" && raw?.success === false) || (Number.isFinite(exitCode) && exitCode !== 0) || item?.status === "failed";
				tool.exitCode = Number.isFinite(exitCode) ? exitCode : undefined;
				tool.metadata = {
					...tool.metadata,
					command: Array.isArray(item?.command) ? item.command : undefined,
					durationMs: item?.duration ? Math.round((item.duration.secs ?? 0) * 1000 + (item.duration.nanos ?? 0) / 1e6) : undefined,
					childThreadIds: Array.isArray(item?.receiver_thread_ids) ? item.receiver_thread_ids : undefined,
				};
				// Codex records the output as the tool gave it: a string, or content parts
				pending.input.push({ role: "tool", tool_call_id: callId, content: output as ChatMessage["content"] });
				inputAt = at;
			} else if (type === "web_search_call") {
				event(line, "web search", { metadata: { action: payload.action, status: payload.status } });
			} else if (type === "compaction" || type === "compaction_summary") {
				compaction(line);
			}
		} else if (line.type === "token_usage_record") {
			lastTurnUsage = payload.turn_token_usage ?? lastTurnUsage;
			closeResponse(at, payload.usage, stringOr(payload.response_id));
		} else if (line.type === "compacted") {
			compaction(line);
		} else if (line.type === "event_msg") {
			if (type === "token_count") {
				// Versions without token_usage_record: the last_token_usage after each response.
				const last = payload.info?.last_token_usage;
				if (!hasUsageRecords && last && hasOutput()) closeResponse(at, last);
				if (payload.info?.total_token_usage && !hasUsageRecords) lastTurnUsage = payload.info.total_token_usage;
			} else if (type === "item_completed" || type === "item_started") {
				const item = payload.item;
				if ((item?.type === "AgentMessage" || item?.type === "Reasoning") && typeof payload.started_at_ms === "number") pending.firstTokenAt ??= payload.started_at_ms;
			} else if (type === "error" || type === "stream_error") {
				const error = type === "error";
				event(line, error ? "error" : "stream error", { level: error ? "ERROR" : "WARNING", message: stringOr(payload.message) });
			} else if (type === "context_compacted") {
				compaction(line);
			}
		}
	}
	const endAt = turn.finish?.at ?? turn.lines.at(-1)?.at ?? startAt;
	if (hasOutput()) closeResponse(endAt, undefined);
	const aborted = turn.finish?.payload.type === "turn_aborted";
	const unfinished = !turn.finish && turn.forcedOutput === undefined;
	return {
		id: turn.id,
		sessionId: thread.sessionId,
		startMs: startAt,
		endMs: endAt,
		text,
		answer: stringOr(finish.last_agent_message) ?? turn.forcedOutput ?? lastText,
		aborted: aborted || undefined,
		warning: aborted ? `turn aborted${finish.reason ? `: ${finish.reason}` : ""}` : unfinished ? "turn did not finish in the rollout" : undefined,
		steps,
		metadata: {
			turnId: turn.id,
			parentTurnId,
			parentTraceId: thread.parentThreadId && parentTurnId ? codexTraceId(thread.parentThreadId, parentTurnId) : undefined,
			trigger: attribution.turn_trigger,
			model,
			cwd: context.cwd,
			approvalPolicy: context.approval_policy,
			sandbox: context.sandbox_policy?.type,
			collaborationMode: started.collaboration_mode_kind,
		},
		endMetadata: { durationMs: finish.duration_ms, ttftMs: ttft, responses, turnUsage: lastTurnUsage },
	};
}

/** The ids Codex traces have always had, so a turn exported by an older version is updated, not duplicated. */
function codexIds(threadId: string, turnId: string): TranscriptIds {
	const scope = `codex:${threadId}:${turnId}`;
	return {
		traceId: codexTraceId(threadId, turnId),
		observation: (kind, key) => {
			if (kind === "tool") return hashId(`codex-call:${threadId}:${key}`, 16);
			if (kind === "prompt") return hashId(`${scope}:turn:0`, 16);
			return hashId(`${scope}:${kind === "llm" ? "response" : "event"}:${key}`, 16);
		},
	};
}

/**
 * A whole rollout (or the part of it from a session_meta on) → its thread and finished turns, pure.
 * With `request.turnId`, that turn counts as finished even without its task_complete (as the Stop hook says).
 */
function parseRollout(text: string, request: CodexRequest = {}): { thread?: CodexThread; prompts: RecordedPrompt[] } {
	const cursor: CodexCursor = { file: "", offset: 0, done: [] };
	const { turns } = collectCodexTurns(rolloutLines(Buffer.from(text, "utf8"), 0), cursor, request);
	const thread = cursor.thread ?? (request.threadId ? { threadId: request.threadId, sessionId: request.threadId } : undefined);
	return { thread, prompts: thread ? turns.map(turn => parseCodexTurn(turn, thread)) : [] };
}

/**
 * Reads what is new in one rollout and records it. Returns the records and a commit that saves the
 * cursor; the caller commits once the records are spooled or sent, so a crash re-reads, never skips.
 */
async function readCodexRollout(
	runtime: Pick<Runtime, "config" | "log">,
	rollout: string,
	request: CodexRequest,
	fromStart = false,
): Promise<RecordRead> {
	const file = cursorFile(runtime.config, "codex", rollout);
	// fromStart: `import --force` reads every turn again (the same ids: the same traces are updated)
	const cursor: CodexCursor = { offset: 0, done: [], ...(fromStart ? {} : readCursor(file)), file: rollout };
	const { lines, size, restarted } = await readRolloutLines(rollout, cursor.offset);
	if (restarted) Object.assign(cursor, { offset: 0, thread: undefined, copying: undefined });
	const { turns, offset } = collectCodexTurns(lines, cursor, request);
	const thread = cursor.thread ?? (request.threadId ? { threadId: request.threadId, sessionId: request.threadId } : undefined);
	runtime.log.debug(`codex: ${path.basename(rollout)} ${size} bytes, from ${cursor.offset}: ${lines.length} line(s), ${turns.length} new turn(s)`);
	const records = new Map<string, ObservationRecord>();
	if (thread && sampled(runtime.config, thread.sessionId)) {
		const recorder = codexRecorder(runtime, thread, rollout, records);
		for (const turn of turns) recordTranscript(recorder, parseCodexTurn(turn, thread), codexIds(thread.threadId, turn.id));
	}
	return {
		records: [...records.values()],
		prompts: turns.length,
		commit: () => writeCursor(file, { ...cursor, thread: cursor.thread, offset, done: [...cursor.done, ...turns.map(turn => turn.id)] }),
	};
}

/** `codex-notify` / `codex-hook`: silent, exit 0, done within CODEX_BUDGET_MS whatever Langfuse does. */
async function runCodexExport(request: CodexRequest | undefined, runtime: Runtime): Promise<void> {
	if (!runtime.exporter || !request) return;
	const rollout = request.file ?? (request.threadId ? findCodexRollout(codexHomeDir(process.env), request.threadId) : undefined);
	if (!rollout || !fs.existsSync(rollout)) {
		runtime.log.debug(`codex: no rollout file for thread ${request.threadId ?? "?"} under ${codexHomeDir(process.env)}`);
		return;
	}
	await exportRecordFile(runtime, "codex", rollout, CODEX_BUDGET_MS, () => readCodexRollout(runtime, rollout, request));
}

// ── §7.4 Claude Code ──────────────────────────────────────────────────────────────────────────────

// Claude Code runs hook commands with JSON on stdin (session_id, transcript_path, hook_event_name, …):
// Stop, StopFailure, SubagentStop and SessionEnd run `bun langfuse.ts claude-hook`, which reads the
// session's transcript (`~/.claude/projects/<cwd>/<session>.jsonl`) from where the last run stopped and
// records every finished prompt through the same recorder, exporter and spool as the other hosts.
//
// The transcript (2.1.332): one JSON object per line, appended. `user` / `assistant` / `system` lines form a
// chain through `uuid` / `parentUuid`; an assistant response is ONE LINE PER CONTENT BLOCK, all with the same
// `message.id` and the full usage repeated on each (so usage counts once per message.id); `api-request`
// (written just before each call) gives the call's start and parameters and points (shapeHash) at an
// `api-request-shape` line with the system prompt and tool definitions, written once per FILE; subagents
// write `<session>/subagents/agent-<id>.jsonl` (+ `.meta.json`, written when the agent ends).
//
// Ids come from the host's ids — the prompt's `uuid`, the API `message.id`, the `tool_use` id — never from
// the session id, so a prompt maps to the same trace from whichever file it is read. `--resume` appends to
// the same file (the cursor does it); `--resume --fork-session` writes a new file that first COPIES the
// history (same uuids and message ids, `requestSessionId` naming the session each copied call was made in):
// copied prompts were sent with their own session and are skipped, but still serve as input history.

/** Everything a hook run may spend, from process start: Claude Code waits for a Stop hook. */
const CLAUDE_BUDGET_MS = 1_000;
/** More unread transcript than this (≈0.5 s of work) is read by a detached run, which may spend the longer budget. */
const CLAUDE_INLINE_BYTES = 8_000_000;
const CLAUDE_BACKGROUND_BUDGET_MS = 120_000;
const CLAUDE_EVENTS = new Set(["Stop", "StopFailure", "SubagentStop", "SessionEnd"]);
/** Agent-starting tools (Task is the older name). */
const CLAUDE_AGENT_TOOLS = new Set(["Agent", "Task"]);
/** A slash command's output, written as a user line after the command. */
const CLAUDE_LOCAL_OUTPUT = /^<local-command-(stdout|stderr)>/;

/** A subagent's own transcript `<session>/subagents/agent-<agentId>.jsonl` and its `.meta.json`. */
interface ClaudeSubagentFile {
	agentId: string;
	lines: string[];
	/** `toolUseId` links it to the parent's Agent call. Written only when the agent ENDS: missing = still running. */
	meta?: { toolUseId?: string; agentType?: string; description?: string; finished?: boolean };
	/** The caller knows the agent ended (SubagentStop named it before the meta file exists). */
	finished?: boolean;
}

interface ClaudeParseOptions {
	/** The file's session id (default: from the lines). Copied (forked) history is recognised against it. */
	sessionId?: string;
	/** Prompt ids already sent: skipped. */
	done?: readonly string[];
	subagents?: readonly ClaudeSubagentFile[];
	/** SessionEnd: nothing will be appended any more, so a prompt left open is complete (aborted). */
	final?: boolean;
	/**
	 * The file's lines BEFORE `lines` (before the cursor), only to look things up, never sent: the history in
	 * generation inputs, and the api-request-shape lines a resumed run's calls point at.
	 */
	context?: readonly string[];
}

interface ClaudeBlock {
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

interface ClaudeUsage {
	input_tokens?: number;
	output_tokens?: number;
	cache_read_input_tokens?: number;
	cache_creation_input_tokens?: number;
	cache_creation?: { ephemeral_5m_input_tokens?: number; ephemeral_1h_input_tokens?: number };
	output_tokens_details?: { thinking_tokens?: number };
	service_tier?: string;
}

/** The transcript fields read here, as observed from 2.1.332; every one optional and checked before use. */
interface ClaudeRawLine {
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
	compactMetadata?: { preTokens?: number; durationMs?: number; preservedSegment?: { headUuid?: string; anchorUuid?: string; tailUuid?: string } };
	promptId?: string;
	cwd?: string;
	gitBranch?: string;
	version?: string;
	permissionMode?: string;
	entrypoint?: string;
	requestRef?: string;
	requestId?: string;
	message?: { id?: string; model?: string; content?: string | ClaudeBlock[]; stop_reason?: string | null; usage?: ClaudeUsage };
	toolUseResult?: unknown;
	// api-request
	id?: string;
	shapeHash?: string;
	params?: { model?: string; max_tokens?: number; thinking?: { type?: string }; output_config?: { effort?: string } };
	// api-request-shape
	shape?: { system?: ClaudeBlock[]; tools?: { name?: string; description?: string; input_schema?: unknown }[] };
}

interface ClaudeLine {
	i: number;
	raw: ClaudeRawLine;
	ms: number;
}

/** One file's lines, parsed once, with the lookups every prompt needs. */
interface ClaudeIndex {
	lines: (ClaudeRawLine | undefined)[];
	byUuid: Map<string, ClaudeLine>;
	apiRequests: Map<string, ClaudeLine>;
	shapes: Map<string, NonNullable<ClaudeRawLine["shape"]>>;
	sessionId: string;
	/** Index of a last line that is not JSON yet (being written), else -1. */
	halfWritten: number;
	/** tool_use id → the user line holding its tool_result. */
	results: Map<string, ClaudeLine>;
	/** Agent tool_use ids whose background agent a <task-notification> reported as ended. */
	notified: Set<string>;
	/** Compaction summary uuid → the messages kept verbatim after it. */
	preserved: Map<string, { head: string; tail: string }>;
}

/** A prompt: from its user line to the next prompt's. */
interface ClaudeSegment {
	first: number;
	end: number;
	prompt: ClaudeLine;
	/** Copied from the session a fork started from: sent with that session already. */
	copied: boolean;
	complete: boolean;
	/** Another prompt follows. */
	next: boolean;
	/** The next prompt's time: lines of the next prompt written before it (a compaction) do not extend this one. */
	untilMs: number;
}

const claudeTime = (iso: string | undefined): number => (iso ? Date.parse(iso) || 0 : 0);
const claudeBlocks = (content: unknown): ClaudeBlock[] => (typeof content === "string" ? [{ type: "text", text: content }] : Array.isArray(content) ? content : []);
const isChatLine = (raw: ClaudeRawLine): boolean => (raw.type === "user" || raw.type === "assistant") && !!raw.message;

/** A tool_result's content as text (a string or text parts; images become a marker). */
function claudeResultText(content: unknown): string {
	if (typeof content === "string") return content;
	if (!Array.isArray(content)) return content === undefined ? "" : JSON.stringify(content);
	return (content as ClaudeBlock[]).map(block => (block.type === "text" ? (block.text ?? "") : block.type === "image" ? "[image]" : "")).join("\n");
}

/** Text parts joined; anything else (images) replaced by a marker so no binary data travels. */
function claudeTextOrParts(blocks: readonly ClaudeBlock[]): string {
	return blocks.map(block => (block.type === "text" ? (block.text ?? "") : `[${block.type ?? "part"}]`)).join("\n");
}

/** A user line that starts a prompt: typed text (or a task-notification), not a tool result, reminder or command output. */
function isClaudePrompt(raw: ClaudeRawLine): boolean {
	if (raw.type !== "user" || raw.isMeta || raw.isCompactSummary || raw.isVisibleInTranscriptOnly || !raw.message) return false;
	if (CLAUDE_LOCAL_OUTPUT.test(textOf(raw.message.content))) return false;
	return !claudeBlocks(raw.message.content).some(block => block.type === "tool_result");
}

/** A slash command as typed: Claude Code records `<command-name>/x</command-name>…<command-args>y</command-args>`. */
function claudeCommandText(text: string): string | undefined {
	const name = /<command-name>([^<]*)<\/command-name>/.exec(text)?.[1];
	if (!name) return undefined;
	const args = /<command-args>([^<]*)<\/command-args>/.exec(text)?.[1]?.trim();
	return args ? `${name} ${args}` : name;
}

/**
 * Usage under TokenCounts' non-overlapping keys. Anthropic counts thinking inside output_tokens and bills it
 * as output, and Langfuse's Claude prices have no reasoning key: thinking stays in output (priced); its count
 * goes to the generation's metadata.
 */
function claudeUsage(usage: ClaudeUsage | undefined): TokenCounts | undefined {
	if (!usage || typeof usage !== "object") return undefined;
	const count = (value: unknown) => finite(value) ?? 0;
	const counts: TokenCounts = {
		input: count(usage.input_tokens),
		output: count(usage.output_tokens),
		cacheRead: count(usage.cache_read_input_tokens),
		cacheWrite: count(usage.cache_creation_input_tokens),
	};
	if (usage.cache_creation) {
		counts.cacheWrite5m = count(usage.cache_creation.ephemeral_5m_input_tokens);
		counts.cacheWrite1h = count(usage.cache_creation.ephemeral_1h_input_tokens);
	}
	counts.total = counts.input! + counts.output! + counts.cacheRead! + counts.cacheWrite!;
	return counts;
}

function indexClaudeLines(lines: readonly string[], sessionId?: string): ClaudeIndex {
	const index: ClaudeIndex = {
		lines: lines.map(line => {
			if (!line.trim()) return undefined;
			const value = parseJsonText(line);
			return value && typeof value === "object" ? (value as ClaudeRawLine) : undefined; // not JSON: still being written
		}),
		byUuid: new Map(),
		apiRequests: new Map(),
		shapes: new Map(),
		sessionId: sessionId ?? "",
		halfWritten: -1,
		results: new Map(),
		notified: new Set(),
		preserved: new Map(),
	};
	index.lines.forEach((raw, i) => {
		if (!raw) return;
		const line = { i, raw, ms: claudeTime(raw.timestamp) };
		if (raw.uuid) index.byUuid.set(raw.uuid, line);
		if (raw.type === "api-request" && raw.id) index.apiRequests.set(raw.id, line);
		if (raw.type === "api-request-shape" && raw.shapeHash && raw.shape) index.shapes.set(raw.shapeHash, raw.shape);
		if (raw.type === "user") {
			for (const block of claudeBlocks(raw.message?.content)) if (block.type === "tool_result" && block.tool_use_id) index.results.set(block.tool_use_id, line);
			const text = raw.message?.content;
			if (typeof text === "string" && text.startsWith("<task-notification>")) {
				const id = /<tool-use-id>([^<]+)<\/tool-use-id>/.exec(text)?.[1];
				if (id && /<status>([^<]+)<\/status>/.exec(text)?.[1] !== "running") index.notified.add(id);
			}
		}
		const kept = raw.compactMetadata?.preservedSegment;
		if (kept?.anchorUuid && kept.headUuid && kept.tailUuid) index.preserved.set(kept.anchorUuid, { head: kept.headUuid, tail: kept.tailUuid });
		if (!index.sessionId && raw.sessionId && isChatLine(raw)) index.sessionId = raw.sessionId;
	});
	const last = lines.length - 1;
	if (last >= 0 && lines[last]!.trim() && !index.lines[last]) index.halfWritten = last;
	return index;
}

/** The main thread's prompts. A fork's copied history ends at the last assistant line made in another session. */
function claudeSegments(index: ClaudeIndex, options: ClaudeParseOptions): ClaudeSegment[] {
	const starts: number[] = [];
	let lastCopied = -1;
	index.lines.forEach((raw, i) => {
		if (raw && !raw.isSidechain && isClaudePrompt(raw)) starts.push(i);
		if (raw?.type === "assistant" && raw.requestSessionId && raw.requestSessionId !== index.sessionId) lastCopied = i;
	});
	const segments = starts.map((start, k): ClaudeSegment => {
		// isMeta reminders written just before a prompt (task-notification turns) belong to it
		let first = start;
		while (first > 0 && index.lines[first - 1]?.isMeta && index.lines[first - 1]?.type === "user") first--;
		const raw = index.lines[start]!;
		const next = k + 1 < starts.length;
		return { first, end: next ? starts[k + 1]! : index.lines.length, prompt: { i: start, raw, ms: claudeTime(raw.timestamp) }, copied: start < lastCopied, complete: false, next, untilMs: Infinity };
	});
	segments.forEach((segment, k) => {
		if (k + 1 < segments.length) segment.untilMs = segments[k + 1]!.prompt.ms;
		segment.complete = options.final === true || claudeComplete(index, segment, options, false);
	});
	return segments;
}

/** A subagent file is one prompt (its task), all lines isSidechain. */
function claudeSidechainSegments(index: ClaudeIndex, options: ClaudeParseOptions): ClaudeSegment[] {
	const start = index.lines.findIndex(raw => raw?.type === "user" && !!raw.message && !raw.isMeta);
	if (start < 0) return [];
	const raw = index.lines[start]!;
	const segment: ClaudeSegment = { first: start, end: index.lines.length, prompt: { i: start, raw, ms: claudeTime(raw.timestamp) }, copied: false, complete: false, next: false, untilMs: Infinity };
	segment.complete = options.final === true || claudeComplete(index, segment, options, true);
	return [segment];
}

/**
 * Finished: the last response did not ask for tools, every tool got its result, no line is half-written, and
 * every agent it started has ended (background agents end after Stop). A slash command is finished at its
 * output line; a prompt never answered, once the next prompt exists.
 */
function claudeComplete(index: ClaudeIndex, segment: ClaudeSegment, options: ClaudeParseOptions, sidechain: boolean): boolean {
	let lastStop: string | null | undefined;
	let answered = false;
	let localOutput = false;
	const pending = new Set<string>();
	const agentCalls: string[] = [];
	for (let i = segment.first; i < segment.end; i++) {
		const raw = index.lines[i];
		if (!raw) {
			if (index.halfWritten === i) return false;
			continue;
		}
		if (!!raw.isSidechain !== sidechain) continue;
		if (raw.type === "assistant" && raw.message) {
			answered = true;
			lastStop = raw.message.stop_reason;
			for (const block of claudeBlocks(raw.message.content)) {
				if (block.type !== "tool_use" || !block.id) continue;
				pending.add(block.id);
				if (CLAUDE_AGENT_TOOLS.has(block.name ?? "")) agentCalls.push(block.id);
			}
		}
		if (raw.type !== "user") continue;
		if (CLAUDE_LOCAL_OUTPUT.test(textOf(raw.message?.content))) localOutput = true;
		for (const block of claudeBlocks(raw.message?.content)) if (block.type === "tool_result" && block.tool_use_id) pending.delete(block.tool_use_id);
	}
	if (!answered) return localOutput || segment.next;
	if (lastStop === "tool_use" || lastStop == null || pending.size) return false;
	return agentCalls.every(id => claudeAgentDone(index, id, options));
}

/** The Agent result names its agent (`agentId`), also while it still runs in the background. */
function claudeAgentId(result: unknown): string | undefined {
	return result && typeof result === "object" ? stringOr((result as { agentId?: unknown }).agentId) : undefined;
}

/** meta.toolUseId is the sure link; the result's agentId works before the meta file exists. */
function claudeSubagentFile(toolUseId: string, agentId: string | undefined, options: ClaudeParseOptions): ClaudeSubagentFile | undefined {
	return options.subagents?.find(file => file.meta?.toolUseId === toolUseId) ?? (agentId ? options.subagents?.find(file => file.agentId === agentId) : undefined);
}

/**
 * Has the agent of Agent call `toolUseId` ended? A foreground agent runs inside the call (status "completed");
 * a background one returns "async_launched" at once: then a <task-notification>, the meta file or the caller tells.
 */
function claudeAgentDone(index: ClaudeIndex, toolUseId: string, options: ClaudeParseOptions): boolean {
	const result = index.results.get(toolUseId)?.raw.toolUseResult;
	const status = result && typeof result === "object" ? (result as { status?: unknown }).status : undefined;
	if (typeof status === "string" && status !== "async_launched") return true;
	if (index.notified.has(toolUseId)) return true;
	const file = claudeSubagentFile(toolUseId, claudeAgentId(result), options);
	return file?.meta?.finished === true || file?.finished === true;
}

/** The chat up to (not including) line `uuid`, along parentUuid, so rewinds and branches come out right. */
function claudeHistory(index: ClaudeIndex, uuid: string | null | undefined, limit: number): ChatMessage[] {
	const chain: ClaudeLine[] = [];
	const seen = new Set<string>();
	const walk = (from: string | null | undefined, stopAfter?: string) => {
		let line = from ? index.byUuid.get(from) : undefined;
		while (line && !seen.has(line.raw.uuid ?? "")) {
			const id = line.raw.uuid ?? "";
			seen.add(id);
			// after a compaction the model gets: the summary, the messages kept verbatim, then what followed
			const kept = index.preserved.get(id);
			if (kept) walk(kept.tail, kept.head);
			if (isChatLine(line.raw)) chain.push(line);
			if (id === stopAfter) return;
			line = line.raw.parentUuid ? index.byUuid.get(line.raw.parentUuid) : undefined;
		}
	};
	walk(uuid);
	chain.reverse();
	// Parallel tool calls branch the chain (each result's parent is its own tool_use line): put the results
	// left on side branches back, in file order.
	const have = new Set(chain.flatMap(line => claudeBlocks(line.raw.message?.content).map(block => (block.type === "tool_result" ? block.tool_use_id : undefined))));
	const missing: ClaudeLine[] = [];
	for (const line of chain) {
		if (line.raw.type !== "assistant") continue;
		for (const block of claudeBlocks(line.raw.message?.content)) {
			const result = block.type === "tool_use" && block.id && !have.has(block.id) ? index.results.get(block.id) : undefined;
			if (result && result.i < limit) missing.push(result);
		}
	}
	for (const result of missing) {
		const at = chain.findIndex(line => line.i > result.i);
		chain.splice(at < 0 ? chain.length : at, 0, result);
	}
	return claudeChat(chain.map(line => line.raw));
}

/** Transcript lines → ChatML: assistant block lines merged by message.id, tool results as role "tool". */
function claudeChat(lines: readonly ClaudeRawLine[]): ChatMessage[] {
	const messages: ChatMessage[] = [];
	let lastAssistantId: string | undefined;
	for (const raw of lines) {
		const message = raw.message;
		if (!message) continue;
		if (raw.type === "assistant") {
			const previous = messages.at(-1);
			if (previous?.role === "assistant" && message.id && message.id === lastAssistantId) claudeAssistant(previous, claudeBlocks(message.content));
			else messages.push(claudeAssistant({ role: "assistant", content: "" }, claudeBlocks(message.content)));
			lastAssistantId = message.id;
			continue;
		}
		lastAssistantId = undefined;
		const blocks = claudeBlocks(message.content);
		for (const block of blocks) if (block.type === "tool_result") messages.push({ role: "tool", tool_call_id: block.tool_use_id ?? "", content: claudeResultText(block.content) });
		const rest = blocks.filter(block => block.type !== "tool_result");
		if (rest.length) messages.push({ role: "user", content: typeof message.content === "string" ? message.content : claudeTextOrParts(rest) });
	}
	return messages;
}

function claudeAssistant(message: ChatMessage, blocks: readonly ClaudeBlock[]): ChatMessage {
	const join = (before: string | undefined, text: string) => (before ? `${before}\n${text}` : text);
	for (const block of blocks) {
		if (block.type === "text" && block.text) message.content = join(message.content as string, block.text);
		else if ((block.type === "thinking" || block.type === "redacted_thinking") && block.thinking) message.reasoning = join(message.reasoning, block.thinking);
		else if (block.type === "tool_use" && block.id) {
			(message.tool_calls ??= []).push({ id: block.id, type: "function", function: { name: block.name ?? "", arguments: JSON.stringify(block.input ?? {}) } });
		}
	}
	return message;
}

/** The system prompt (from the request's shape) in front of the history. */
function claudeInput(index: ClaudeIndex, request: ClaudeLine | undefined, before: ClaudeLine): ChatMessage[] {
	const input = claudeHistory(index, before.raw.parentUuid, before.i);
	const shape = request?.raw.shapeHash ? index.shapes.get(request.raw.shapeHash) : undefined;
	const system = shape?.system ? textOf(shape.system) : "";
	if (system) input.unshift({ role: "system", content: system });
	return input;
}

/** One API call: its block lines merged (usage ONCE, from the last line), start from its api-request line. */
function claudeLlmStep(index: ClaudeIndex, lines: ClaudeLine[], previousEnd: number): RecordedLlmCall {
	const first = lines[0]!;
	const last = lines.at(-1)!;
	const request = first.raw.requestRef ? index.apiRequests.get(first.raw.requestRef) : undefined;
	const shape = request?.raw.shapeHash ? index.shapes.get(request.raw.shapeHash) : undefined;
	const params = request?.raw.params;
	const parameters: Record<string, string | number | boolean> = {};
	if (params?.max_tokens !== undefined) parameters.max_tokens = params.max_tokens;
	if (params?.thinking?.type) parameters.thinking = params.thinking.type;
	if (params?.output_config?.effort) parameters.effort = params.output_config.effort;
	const usage = last.raw.message?.usage;
	const thinkingTokens = finite(usage?.output_tokens_details?.thinking_tokens);
	const step: RecordedLlmCall = {
		kind: "llm",
		id: first.raw.message?.id ?? first.raw.uuid ?? String(first.i),
		// without its api-request line (older files) the call started when the step before it ended
		startMs: request?.ms ?? previousEnd,
		endMs: last.ms,
		model: first.raw.message?.model,
		provider: "anthropic",
		input: claudeInput(index, request, first),
		output: claudeAssistant({ role: "assistant", content: "" }, lines.flatMap(line => claudeBlocks(line.raw.message?.content))),
		usage: claudeUsage(usage),
		stopReason: last.raw.message?.stop_reason ?? undefined,
		metadata: { messageId: first.raw.message?.id, requestId: first.raw.requestId, serviceTier: usage?.service_tier, thinkingTokens: thinkingTokens || undefined },
	};
	if (Object.keys(parameters).length) step.parameters = parameters;
	if (shape?.tools?.length) step.tools = shape.tools.map(tool => ({ type: "function", function: { name: tool.name ?? "", description: tool.description, parameters: tool.input_schema } }));
	return step;
}

/** An API error (a `<synthetic>` assistant line after Claude Code's retries): the attempts are the unanswered api-request lines. */
function claudeErrorStep(index: ClaudeIndex, segment: ClaudeSegment, line: ClaudeLine, error: string): RecordedLlmCall {
	const answered = new Set<string>();
	let after = segment.first;
	for (let i = segment.first; i < line.i; i++) {
		const raw = index.lines[i];
		if (raw?.type === "assistant" && raw.requestRef) {
			answered.add(raw.requestRef);
			after = i;
		}
	}
	const attempts: ClaudeLine[] = [];
	for (let i = after; i < line.i; i++) {
		const raw = index.lines[i];
		if (raw?.type === "api-request" && raw.id && !answered.has(raw.id)) attempts.push({ i, raw, ms: claudeTime(raw.timestamp) });
	}
	const first = attempts[0];
	return {
		kind: "llm",
		id: line.raw.message?.id ?? line.raw.uuid ?? String(line.i),
		startMs: first?.ms ?? line.ms,
		endMs: line.ms,
		model: first?.raw.params?.model,
		provider: "anthropic",
		parameters: { attempts: attempts.length },
		input: claudeInput(index, first, line),
		output: { role: "assistant", content: error },
		error,
	};
}

/** Compactions in a prompt's time (a manual /compact writes them BEFORE its own prompt line). Their API calls are not recorded. */
function claudeCompactions(index: ClaudeIndex, segment: ClaudeSegment, sidechain: boolean): RecordedCompaction[] {
	const steps: RecordedCompaction[] = [];
	index.lines.forEach((raw, i) => {
		if (raw?.type !== "system" || raw.subtype !== "compact_boundary" || !!raw.isSidechain !== sidechain) return;
		const at = claudeTime(raw.timestamp);
		if (at < segment.prompt.ms || at >= segment.untilMs) return;
		const summary = index.lines.find(line => line?.isCompactSummary && line.parentUuid === raw.uuid);
		const meta = raw.compactMetadata;
		steps.push({ kind: "compaction", id: raw.uuid ?? String(i), startMs: at - (meta?.durationMs ?? 0), endMs: at, summary: summary ? textOf(summary.message?.content) : undefined, tokensBefore: meta?.preTokens });
	});
	return steps;
}

/** The subagent run an Agent call started, parsed from its own transcript, in the parent's session. */
function claudeSubagent(index: ClaudeIndex, toolUseId: string, result: unknown, options: ClaudeParseOptions): RecordedToolCall["subagent"] {
	const file = claudeSubagentFile(toolUseId, claudeAgentId(result), options);
	if (!file) return undefined;
	const final = claudeAgentDone(index, toolUseId, options) || options.final;
	const prompts = parseClaudePrompts(file.lines, { sessionId: index.sessionId, subagents: options.subagents, final }, true);
	for (const prompt of prompts) prompt.metadata = { ...prompt.metadata, agentId: file.agentId, agentType: file.meta?.agentType, description: file.meta?.description };
	return { sessionId: index.sessionId, prompts };
}

function claudePrompt(index: ClaudeIndex, segment: ClaudeSegment, options: ClaudeParseOptions, sidechain: boolean): RecordedPrompt {
	// generations and tools in the order their first line appears; a generation is built once all its lines are in
	const order: (ClaudeLine[] | RecordedToolCall | RecordedLlmCall)[] = [];
	const generations = new Map<string, ClaudeLine[]>();
	const tools = new Map<string, RecordedToolCall>();
	let endMs = segment.prompt.ms;
	let error: string | undefined;
	for (let i = segment.first; i < segment.end; i++) {
		const raw = index.lines[i];
		if (!raw || !!raw.isSidechain !== sidechain || !raw.message) continue;
		const line: ClaudeLine = { i, raw, ms: claudeTime(raw.timestamp) };
		if (line.ms && !raw.isCompactSummary && line.ms < segment.untilMs) endMs = Math.max(endMs, line.ms);
		if (raw.type === "assistant") {
			if (raw.isApiErrorMessage || raw.message.model === "<synthetic>") {
				error = textOf(raw.message.content) || "API error";
				order.push(claudeErrorStep(index, segment, line, error));
				continue;
			}
			const id = raw.message.id ?? raw.uuid ?? String(i);
			let lines = generations.get(id);
			if (!lines) {
				lines = [];
				generations.set(id, lines);
				order.push(lines);
			}
			lines.push(line);
			for (const block of claudeBlocks(raw.message.content)) {
				if (block.type !== "tool_use" || !block.id) continue;
				// written when its block finished streaming: the tool starts then
				const tool: RecordedToolCall = { kind: "tool", id: block.id, name: block.name ?? "", startMs: line.ms, input: block.input ?? {}, output: undefined, isError: false, metadata: { toolUseId: block.id } };
				tools.set(block.id, tool);
				order.push(tool);
			}
		} else if (raw.type === "user") {
			for (const block of claudeBlocks(raw.message.content)) {
				const tool = block.type === "tool_result" && block.tool_use_id ? tools.get(block.tool_use_id) : undefined;
				if (!tool) continue;
				tool.endMs = Math.max(tool.startMs, line.ms);
				tool.output = claudeResultText(block.content);
				tool.isError = block.is_error === true;
				if (CLAUDE_AGENT_TOOLS.has(tool.name)) tool.subagent = claudeSubagent(index, tool.id, raw.toolUseResult, options);
			}
		}
	}
	let lastEnd = segment.prompt.ms;
	const steps: RecordedStep[] = order.map(item => {
		const step = Array.isArray(item) ? claudeLlmStep(index, item, lastEnd) : item;
		lastEnd = Math.max(lastEnd, step.endMs ?? step.startMs);
		return step;
	});
	const startOf = (step: RecordedStep) => (step.kind === "event" ? step.at : step.startMs);
	for (const compaction of claudeCompactions(index, segment, sidechain)) {
		const at = steps.findIndex(step => startOf(step) > compaction.startMs);
		steps.splice(at < 0 ? steps.length : at, 0, compaction);
		endMs = Math.max(endMs, compaction.startMs);
	}
	// background agents end after the parent's turn: the prompt ends with its last child
	for (const step of steps) if (step.kind === "tool") for (const run of step.subagent?.prompts ?? []) endMs = Math.max(endMs, run.endMs);
	const lastGeneration = steps.filter((step): step is RecordedLlmCall => step.kind === "llm" && !step.error).at(-1);
	let answer = typeof lastGeneration?.output.content === "string" && lastGeneration.output.content ? lastGeneration.output.content : undefined;
	// a slash command has no model answer; its output line is the closest thing
	for (let i = segment.first; i < segment.end && !answer; i++) {
		const text = textOf(index.lines[i]?.message?.content);
		if (index.lines[i]?.type === "user" && CLAUDE_LOCAL_OUTPUT.test(text)) answer = text.replace(/<\/?local-command-(stdout|stderr)>/g, "").trim();
	}
	const raw = segment.prompt.raw;
	const typed = typeof raw.message?.content === "string" ? raw.message.content : claudeTextOrParts(claudeBlocks(raw.message?.content));
	const prompt: RecordedPrompt = {
		id: raw.uuid ?? String(segment.prompt.i),
		sessionId: index.sessionId,
		startMs: segment.prompt.ms,
		endMs,
		text: claudeCommandText(typed) ?? typed,
		steps,
		metadata: { promptId: raw.promptId, cwd: raw.cwd, gitBranch: raw.gitBranch, version: raw.version, permissionMode: raw.permissionMode, entrypoint: raw.entrypoint },
	};
	if (answer) prompt.answer = answer;
	if (error) prompt.error = error;
	// open at SessionEnd (final), or never answered before the user went on
	if (!claudeComplete(index, segment, { ...options, final: false }, sidechain) || (!order.length && !answer)) prompt.aborted = true;
	return prompt;
}

function parseClaudePrompts(lines: readonly string[], options: ClaudeParseOptions, sidechain: boolean): RecordedPrompt[] {
	return readClaudeLines(lines, 0, options, sidechain).prompts;
}

/**
 * One read of a transcript (or subagent file) from byte `offset`, indexed once: the finished prompts not sent
 * yet, and the cursor after sending them. The cursor stops at the first UNFINISHED prompt (a background agent
 * still running); finished prompts after it are listed in `done`.
 */
function readClaudeLines(lines: readonly string[], offset: number, options: ClaudeParseOptions, sidechain = false): { prompts: RecordedPrompt[]; cursor: RecordCursor } {
	const skip = options.context?.length ?? 0;
	const index = indexClaudeLines(skip ? [...options.context!, ...lines] : lines, options.sessionId);
	const segments = (sidechain ? claudeSidechainSegments(index, options) : claudeSegments(index, options)).filter(segment => segment.prompt.i >= skip);
	const done = new Set(options.done ?? []);
	const prompts = segments.filter(segment => segment.complete && !segment.copied && !done.has(segment.prompt.raw.uuid ?? "")).map(segment => claudePrompt(index, segment, options, sidechain));
	const open = segments.find(segment => !segment.complete && !segment.copied);
	// the last element of split("\n") is "" after a complete last line, else a line still being written
	const stop = open ? Math.max(open.first, skip) : skip + Math.max(0, lines.length - 1);
	let bytes = offset;
	for (let i = skip; i < stop; i++) bytes += Buffer.byteLength(lines[i - skip]!, "utf8") + 1;
	const later = segments.filter(segment => segment.first >= stop && (segment.complete || segment.copied)).map(segment => segment.prompt.raw.uuid ?? "");
	return { prompts, cursor: { offset: bytes, done: later } };
}

/**
 * The finished prompts of a Claude Code transcript (main thread), with generations, tools and subagents, pure.
 * `lines` = the file's text from the cursor, split on "\n". Skips prompts in `done` and those a fork copied.
 */
function parseClaudeTranscript(lines: readonly string[], options: ClaudeParseOptions = {}): RecordedPrompt[] {
	return parseClaudePrompts(lines, options, false);
}

/** The cursor after sending what parseClaudeTranscript returned for the same lines and options, read from byte `offset`. */
function nextClaudeCursor(lines: readonly string[], offset: number, options: ClaudeParseOptions = {}): RecordCursor {
	return readClaudeLines(lines, offset, options).cursor;
}

// ── the hook ──

interface ClaudeRequest {
	event: string;
	sessionId?: string;
	transcript: string;
	/** SubagentStop: this agent has ended, even before its meta file is written. */
	agentId?: string;
}

/** The hook's stdin; undefined for events that export nothing or a payload without a transcript. */
function claudeHookRequest(text: string): ClaudeRequest | undefined {
	const event = parseJsonText(text) as Record<string, unknown> | undefined;
	if (!event || typeof event !== "object") return undefined;
	const name = stringOr(event.hook_event_name) ?? "Stop";
	const transcript = stringOr(event.transcript_path);
	if (!CLAUDE_EVENTS.has(name) || !transcript) return undefined;
	return { event: name, sessionId: stringOr(event.session_id), transcript, agentId: name === "SubagentStop" ? stringOr(event.agent_id) : undefined };
}

/**
 * `<session>/subagents/agent-<id>.jsonl` next to the transcript, with the meta files that exist yet. A file's
 * lines are read only when a prompt of this run needs them (a long session keeps every agent it ever ran).
 */
function readClaudeSubagents(transcript: string, endedAgent: string | undefined): ClaudeSubagentFile[] {
	const dir = path.join(transcript.replace(/\.jsonl$/, ""), "subagents");
	const names = call(() => fs.readdirSync(dir)) ?? [];
	return names
		.filter(name => /^agent-.+\.jsonl$/.test(name))
		.map(name => {
			const agentId = name.slice("agent-".length, -".jsonl".length);
			const meta = call(() => JSON.parse(fs.readFileSync(path.join(dir, `agent-${agentId}.meta.json`), "utf8")));
			let lines: string[] | undefined;
			return {
				agentId,
				meta: meta && typeof meta === "object" ? meta : undefined,
				finished: agentId === endedAgent || undefined,
				get lines() {
					return (lines ??= call(() => fs.readFileSync(path.join(dir, name), "utf8").split("\n")) ?? []);
				},
			};
		});
}

/** The first timestamp in a transcript's head: when its session began. */
function claudeStartMs(head: string): number | undefined {
	for (const line of head.split("\n").slice(0, 50)) {
		const value = parseJsonText(line) as { timestamp?: unknown } | undefined;
		const at = value && typeof value === "object" ? Date.parse(String(value.timestamp)) : Number.NaN;
		if (Number.isFinite(at)) return at;
	}
	return undefined;
}

/** Trace ids from the prompt's uuid alone: the same prompt read from a fork or an import is the same trace. */
const claudeIds = (promptId: string) => transcriptIds(`claude-code:${promptId}`);

/** What is new in one transcript, recorded; the cursor is saved by `commit` once the records are safe. */
async function readClaudeTranscript(runtime: Pick<Runtime, "config" | "log">, request: ClaudeRequest, fromStart = false): Promise<RecordRead> {
	const file = cursorFile(runtime.config, "claude", request.transcript);
	const text = await fsp.readFile(request.transcript);
	// fromStart: `import --force` reads every prompt again (the same ids: the same traces are updated)
	const saved = fromStart ? undefined : readCursor(file);
	// replaced or truncated: read it again from the top
	const cursor: RecordCursor = saved && saved.offset <= text.length ? { offset: saved.offset, done: saved.done } : { offset: 0, done: [] };
	const options: ClaudeParseOptions = {
		sessionId: request.sessionId,
		done: cursor.done,
		subagents: readClaudeSubagents(request.transcript, request.agentId),
		final: request.event === "SessionEnd",
		context: text.toString("utf8", 0, cursor.offset).split("\n").slice(0, -1),
	};
	const lines = text.toString("utf8", cursor.offset).split("\n");
	const { prompts, cursor: next } = readClaudeLines(lines, cursor.offset, options);
	runtime.log.debug(`claude: ${path.basename(request.transcript)} ${text.length} bytes, from ${cursor.offset}: ${lines.length} line(s), ${prompts.length} new prompt(s)`);
	const records = new Map<string, ObservationRecord>();
	const sessionId = prompts[0]?.sessionId || request.sessionId;
	if (sessionId && prompts.length && sampled(runtime.config, sessionId)) {
		const version = stringOr(prompts.at(-1)!.metadata?.version);
		const cwd = stringOr(prompts.at(-1)!.metadata?.cwd);
		// grouped by session, every run re-sends the session root: it starts when the transcript does
		const startedMs = runtime.config.grouping === "session" ? claudeStartMs(text.toString("utf8", 0, Math.min(text.length, 64 * 1024))) : undefined;
		const recorder = collectingRecorder(
			runtime,
			{ sessionId, host: "claude-code", hostVersion: version, cwd, startedMs, metadata: { host: "claude-code", hostVersion: version, transcript: request.transcript } },
			records,
		);
		for (const prompt of prompts) recordTranscript(recorder, prompt, claudeIds(prompt.id));
	}
	return { records: [...records.values()], prompts: prompts.length, commit: () => writeCursor(file, next) };
}

/**
 * `claude-hook`: silent, exit 0, done within CLAUDE_BUDGET_MS whatever Langfuse does. A long history not read
 * yet (the hook installed in the middle of a session, an old session resumed) would take longer than Claude
 * Code waits, and a hook it kills never saves its cursor: that read goes to a detached run of its own.
 */
async function runClaudeExport(request: ClaudeRequest | undefined, runtime: Runtime, background = false): Promise<void> {
	if (!runtime.exporter || !request) return;
	const size = call(() => fs.statSync(request.transcript).size);
	if (size === undefined) return;
	const offset = readCursor(cursorFile(runtime.config, "claude", request.transcript))?.offset ?? 0;
	if (!background && size - offset > CLAUDE_INLINE_BYTES) {
		runtime.log.debug(`claude: ${formatBytes(size - offset)} not read yet: handing them to a background run`);
		return spawnDetached(runtime, "claude", ["claude-hook", "--background", JSON.stringify(request)]);
	}
	await exportRecordFile(runtime, "claude", request.transcript, background ? CLAUDE_BACKGROUND_BUDGET_MS : CLAUDE_BUDGET_MS, () => readClaudeTranscript(runtime, request));
}

// ── §7.5 History import ───────────────────────────────────────────────────────────────────────────
//
// `bun langfuse.ts import` (§8) reads what the hosts themselves recorded and sends it as the traces the
// live hooks would have made, with the ids they would have used (piIds, ocIds, codexIds): importing twice,
// or importing a session that was traced live, updates the same traces. Records (measured on omp 18.2.3,
// pi 0.73.1, opencode 1.18.33; test/fixtures/import/):
// - omp / pi: one JSONL file per session: header `{type:"session", id, cwd, parentSession?}` (omp writes a
//   padded `title` line first and rewrites it in place), then entries `{type, id, parentId, timestamp}`:
//   `message` (user / assistant with usage and cost / toolResult), `compaction`, `custom`
//   (omp: tool_execution_start, session_exit), omp subagents' `session_init`. Entries form a tree: a
//   call's input is its ancestor chain, not everything above it. omp subagents live in
//   `<parent file minus .jsonl>/<TaskId>.jsonl`, named by the parent's task result.
// - OpenCode: SQLite tables session (parent_id, cumulative totals), message (JSON data: role, parentID,
//   tokens, cost, finish, time), part (text, tool {callID, state}, reasoning, step-*).
// - Codex and Claude Code: the readers of §7.3 and §7.4, with the cursors their hooks keep.
// Not in any record, so left out, not invented: request parameters, the full tool schemas, time to first
// token (pi, Codex), OpenCode's system prompt, omp's compaction LLM calls.

type ImportHost = "omp" | "pi" | "opencode" | "codex" | "claude";
/** Parsed host JSON: every field is tested before use, as with live events. */
type Raw = Record<string, any>;

const isRaw = (value: unknown): value is Raw => eventObject(value) !== null;
const listOf = (value: unknown): any[] => (Array.isArray(value) ? value : []);
const rawLine = (line: string): Raw | undefined => (line.trim() ? [parseJsonText(line)].find(isRaw) : undefined);

/** ISO text or epoch ms → epoch ms. */
function epochMs(value: unknown): number | undefined {
	if (typeof value !== "string") return finite(value);
	const ms = Date.parse(value);
	return Number.isNaN(ms) ? undefined : ms;
}

/** Token counts the host recorded (a recorded 0 is kept: it is a fact). */
function recordedCounts(counts: TokenCounts): TokenCounts | undefined {
	const kept = Object.entries(counts).filter(([, value]) => value !== undefined);
	return kept.length ? Object.fromEntries(kept) : undefined;
}

const stepStart = (step: RecordedStep) => (step.kind === "event" ? step.at : step.startMs);

// ── omp / pi session files ──

interface PiSessionParse {
	sessionId: string;
	cwd?: string;
	/** omp subagents: the parent's session file as the child recorded it. */
	parentSession?: string;
	title?: string;
	/** Prompt ids are the user message's timestamp, generation ids the assistant message's: what live hooks see. */
	prompts: RecordedPrompt[];
	/** omp task tools that ran subagents: tool-call id → task ids (= child file names). */
	subagentTasks: { toolCallId: string; taskIds: string[] }[];
	/** A session_exit follows the last prompt (omp), or pi's last call stopped: the host finished writing it. */
	complete: boolean;
}

interface PiEntry {
	type: string;
	id?: string;
	parentId?: string;
	at?: number;
	raw: Raw;
}

function piAssistantOutput(message: Raw): ChatMessage {
	const parts = listOf(message.content).filter(isRaw);
	const joined = (type: string, key: string) => parts.filter(part => part.type === type).map(part => stringOr(part[key]) ?? "").join("");
	const calls = parts
		.filter(part => part.type === "toolCall")
		.map(part => ({ id: String(part.id), type: "function" as const, function: { name: String(part.name), arguments: JSON.stringify(part.arguments ?? {}) } }));
	return { role: "assistant", content: joined("text", "text"), tool_calls: calls.length ? calls : undefined, reasoning: joined("thinking", "thinking") || undefined };
}

function piChat(message: Raw): ChatMessage | undefined {
	if (message.role === "user") return { role: "user", content: textOf(message.content) };
	if (message.role === "toolResult") return { role: "tool", content: textOf(message.content), tool_call_id: stringOr(message.toolCallId) };
	return message.role === "assistant" ? piAssistantOutput(message) : undefined;
}

/** The messages a call received: its ancestors (the tree may hold other branches), cut at a compaction. */
function piHistory(entry: PiEntry, byId: Map<string, PiEntry>, chat: Map<string, ChatMessage>, system?: string): ChatMessage[] {
	const chain: PiEntry[] = [];
	const seen = new Set<string>();
	for (let at = entry.parentId ? byId.get(entry.parentId) : undefined; at?.id && !seen.has(at.id); at = at.parentId ? byId.get(at.parentId) : undefined) {
		seen.add(at.id);
		chain.unshift(at);
	}
	const messages = (entries: PiEntry[]) => entries.flatMap(e => (e.id && chat.get(e.id)) || []);
	const head: ChatMessage[] = system ? [{ role: "system", content: system }] : [];
	const cut = chain.map(e => e.type).lastIndexOf("compaction");
	if (cut < 0) return [...head, ...messages(chain)];
	// after a compaction the model sees its summary, the entries it kept (from firstKeptEntryId), then what followed
	const compaction = chain[cut]!;
	const kept = chain.findIndex(e => e.id === compaction.raw.firstKeptEntryId);
	head.push({ role: "user", content: `[compaction summary]\n${stringOr(compaction.raw.summary) ?? ""}` });
	return [...head, ...messages(kept >= 0 && kept < cut ? chain.slice(kept, cut) : []), ...messages(chain.slice(cut + 1))];
}

function piLlmCall(entry: PiEntry, message: Raw, input: ChatMessage[], tools: ToolDefinition[] | undefined): RecordedLlmCall {
	const written = entry.at ?? 0;
	const start = epochMs(message.timestamp) ?? written;
	const usage = isRaw(message.usage) ? message.usage : undefined;
	const cost = isRaw(usage?.cost) ? usage.cost : undefined;
	const total = finite(cost?.total);
	const duration = finite(message.duration);
	const ttft = finite(message.ttft);
	// omp: completedAt, or start + duration; pi writes the entry when the message ends
	const end = finite(message.completedAt) ?? (duration !== undefined ? start + duration : written);
	return {
		kind: "llm",
		id: String(start),
		startMs: start,
		endMs: Math.max(start, end),
		completionStartMs: ttft !== undefined ? Math.round(start + ttft) : undefined,
		model: stringOr(message.model),
		provider: stringOr(message.provider),
		input,
		tools,
		output: piAssistantOutput(message),
		// omp/pi report input without the cached tokens already
		usage: usage && recordedCounts({ input: finite(usage.input), output: finite(usage.output), cacheRead: finite(usage.cacheRead), cacheWrite: finite(usage.cacheWrite), total: finite(usage.totalTokens) }),
		// an unpriced model records 0: no cost is sent rather than a zero
		costUsd: cost && total !== undefined && total > 0 ? { input: finite(cost.input), output: finite(cost.output), cacheRead: finite(cost.cacheRead), cacheWrite: finite(cost.cacheWrite), total } : undefined,
		stopReason: stringOr(message.stopReason),
		error: stringOr(message.errorMessage) ?? (message.stopReason === "error" ? "error" : undefined),
		metadata: { responseId: message.responseId, entryId: entry.id },
	};
}

/** omp's task result names the subagents it ran (details.results[].id); without results, the call's tasks[].name. */
function piSubagentTaskIds(message: Raw, args: unknown): string[] {
	if (message.toolName !== "task") return [];
	const named = (items: unknown, key: string) => listOf(items).flatMap(item => stringOr(isRaw(item) ? item[key] : undefined) ?? []);
	const fromResults = named(isRaw(message.details) ? message.details.results : undefined, "id");
	return fromResults.length ? fromResults : named(isRaw(args) ? args.tasks : undefined, "name");
}

/**
 * One omp or pi session file (its lines), pure. A prompt starts at each user message and holds every
 * call, tool and compaction until the next one. A half-written last line is skipped (read next time).
 */
function parsePiSessionFile(lines: string[]): PiSessionParse {
	const result: PiSessionParse = { sessionId: "", prompts: [], subagentTasks: [], complete: false };
	const entries: PiEntry[] = [];
	let system: string | undefined;
	let tools: ToolDefinition[] | undefined;
	for (const line of lines) {
		const raw = rawLine(line);
		if (typeof raw?.type !== "string") continue;
		if (raw.type === "session") {
			Object.assign(result, { sessionId: stringOr(raw.id) ?? "", cwd: stringOr(raw.cwd), parentSession: stringOr(raw.parentSession) });
			continue;
		}
		if (raw.type === "title") {
			result.title = stringOr(raw.title) ?? result.title;
			continue;
		}
		if (raw.type === "session_init") {
			system = stringOr(raw.systemPrompt);
			// only the names are recorded: no schemas invented
			const names = listOf(raw.tools).filter((name): name is string => typeof name === "string");
			if (names.length) tools = names.map(name => ({ type: "function", function: { name } }));
		}
		entries.push({ type: raw.type, id: stringOr(raw.id), parentId: stringOr(raw.parentId), at: epochMs(raw.timestamp), raw });
	}
	const byId = new Map(entries.flatMap(e => (e.id ? [[e.id, e] as const] : [])));
	const chat = new Map<string, ChatMessage>();
	const open = new Map<string, RecordedToolCall>();
	const toolStarts = new Map<string, number>();
	let prompt: RecordedPrompt | undefined;
	let lastAt = 0;
	const finishPrompt = () => {
		if (!prompt) return;
		open.clear(); // a tool without a result stays without an end: the recorder marks it
		prompt.steps.sort((a, b) => stepStart(a) - stepStart(b));
		result.prompts.push(prompt);
		prompt = undefined;
	};
	for (const entry of entries) {
		const at = entry.at ?? lastAt;
		const { raw } = entry;
		if (entry.type === "custom" && raw.customType === "tool_execution_start" && isRaw(raw.data)) {
			const id = stringOr(raw.data.toolCallId);
			const started = epochMs(raw.data.startedAt) ?? at;
			if (id) toolStarts.set(id, started);
			const tool = id ? open.get(id) : undefined;
			if (tool) tool.startMs = started;
		} else if (entry.type === "custom" && raw.customType === "session_exit") {
			if (prompt) prompt.endMs = Math.max(prompt.endMs, at);
			result.complete = true;
		} else if (entry.type === "compaction") {
			// the record has only the end; it started when the entry before it was written
			const step: RecordedCompaction = { kind: "compaction", id: entry.id ?? String(at), startMs: lastAt || at, endMs: at, summary: stringOr(raw.summary), tokensBefore: finite(raw.tokensBefore) };
			if (prompt) {
				prompt.steps.push(step);
				prompt.endMs = Math.max(prompt.endMs, at);
			} else {
				result.prompts.push({ id: step.id, sessionId: result.sessionId, startMs: step.startMs, endMs: step.endMs, text: "compaction", steps: [step] });
			}
		} else if (entry.type === "message" && isRaw(raw.message)) {
			const message = raw.message;
			const messageAt = epochMs(message.timestamp) ?? at;
			if (message.role === "user") {
				finishPrompt();
				result.complete = false;
				prompt = { id: String(messageAt), sessionId: result.sessionId, startMs: messageAt, endMs: at, text: textOf(message.content), steps: [], metadata: { entryId: entry.id } };
			} else if (message.role === "assistant" && prompt) {
				const step = piLlmCall(entry, message, piHistory(entry, byId, chat, system), tools);
				prompt.steps.push(step);
				if (typeof step.output.content === "string" && step.output.content) prompt.answer = step.output.content;
				prompt.aborted = message.stopReason === "aborted" || undefined;
				prompt.error = step.error;
				for (const call of step.output.tool_calls ?? []) {
					const part = listOf(message.content).find(p => isRaw(p) && p.type === "toolCall" && p.id === call.id);
					// pi records no tool start: the call exists once the message is complete
					const tool: RecordedToolCall = { kind: "tool", id: call.id, name: call.function.name, startMs: toolStarts.get(call.id) ?? step.endMs, input: part?.arguments, output: undefined, isError: false };
					open.set(call.id, tool);
					prompt.steps.push(tool);
				}
				prompt.endMs = Math.max(prompt.endMs, step.endMs, at);
			} else if (message.role === "toolResult" && prompt) {
				const id = stringOr(message.toolCallId) ?? "";
				const tool = open.get(id);
				if (tool) {
					open.delete(id);
					const parts = listOf(message.content);
					Object.assign(tool, { endMs: Math.max(tool.startMs, messageAt), output: parts.every(p => p?.type === "text") ? textOf(parts) : parts, isError: message.isError === true });
					const taskIds = piSubagentTaskIds(message, tool.input);
					if (taskIds.length) result.subagentTasks.push({ toolCallId: id, taskIds });
				}
				prompt.endMs = Math.max(prompt.endMs, messageAt, at);
			}
			const asChat = piChat(message);
			if (asChat && entry.id) chat.set(entry.id, asChat);
		}
		if (entry.at !== undefined) lastAt = entry.at;
	}
	finishPrompt();
	// pi writes no session_exit: a prompt whose last call stopped (not for tools) is finished
	const last = result.prompts.at(-1)?.steps.filter(step => step.kind === "llm").at(-1);
	if (!result.complete && last?.kind === "llm" && last.stopReason !== "toolUse") result.complete = true;
	return result;
}

interface PiSessionFile {
	path: string;
	parsed: PiSessionParse;
}

/**
 * Nests omp subagent files into the task tool that ran them; returns the rest (top-level). A child lives
 * at `<parent file minus .jsonl>/<TaskId>.jsonl`: names are matched, not the absolute paths the records
 * hold, so moved histories still link. A child without its task tool stays top-level, linked by id.
 */
function linkPiSubagents(files: PiSessionFile[]): PiSessionFile[] {
	const stem = (file: string) => file.replace(/\\/g, "/").replace(/\.jsonl$/, "");
	const byStem = new Map(files.map(file => [stem(file.path), file]));
	const nested = new Set<PiSessionFile>();
	for (const parent of files) {
		for (const task of parent.parsed.subagentTasks) {
			const tool = parent.parsed.prompts.flatMap(p => p.steps).find((step): step is RecordedToolCall => step.kind === "tool" && step.id === task.toolCallId);
			for (const taskId of tool ? task.taskIds : []) {
				const child = byStem.get(`${stem(parent.path)}/${taskId}`);
				if (!child?.parsed.parentSession || path.basename(stem(child.parsed.parentSession)) !== path.basename(stem(parent.path))) continue;
				tool!.subagent = { sessionId: child.parsed.sessionId, prompts: child.parsed.prompts };
				nested.add(child);
			}
		}
	}
	return files.filter(file => !nested.has(file));
}

// ── OpenCode's database ──

interface OpenCodeRows {
	sessions: { id: string; parent_id: string | null; title: string; directory: string; time_updated: number }[];
	messages: { id: string; session_id: string; time_created: number; data: string }[];
	parts: { id: string; message_id: string; session_id: string; time_created: number; data: string }[];
}

interface OpenCodeSession {
	sessionId: string;
	parentId?: string;
	title: string;
	directory: string;
	timeUpdated: number;
	/** The newest message finished for good (not "tool-calls"): the last prompt will not grow. */
	complete: boolean;
	/** Prompt ids are user message ids, generation ids assistant message ids, tool ids call ids: what live hooks see. */
	prompts: RecordedPrompt[];
}

const dataOf = (row: { data: string }): Raw => rawLine(row.data) ?? {};

function openCodeLlmCall(row: OpenCodeRows["messages"][number], data: Raw, parts: Raw[], input: ChatMessage[]): RecordedLlmCall {
	const time = isRaw(data.time) ? data.time : {};
	const start = finite(time.created) ?? row.time_created;
	const end = finite(time.completed) ?? Math.max(start, ...parts.map(part => finite(part.time?.end) ?? 0));
	const joined = (type: string) => parts.filter(part => part.type === type && part.synthetic !== true).map(part => stringOr(part.text) ?? "").join("");
	const calls = parts
		.filter(part => part.type === "tool")
		.map(part => ({ id: stringOr(part.callID) ?? String(part.id), type: "function" as const, function: { name: stringOr(part.tool) ?? "tool", arguments: JSON.stringify(part.state?.input ?? {}) } }));
	// the first streamed text/reasoning is the host's own record of the first token
	const firstOut = parts.flatMap(part => ((part.type === "text" || part.type === "reasoning") && finite(part.time?.start)) || []);
	const tokens = isRaw(data.tokens) ? data.tokens : undefined;
	const cost = finite(data.cost);
	return {
		kind: "llm",
		id: row.id,
		startMs: start,
		endMs: Math.max(start, end),
		completionStartMs: firstOut.length ? Math.min(...firstOut) : undefined,
		model: stringOr(data.modelID),
		provider: stringOr(data.providerID),
		input,
		output: { role: "assistant", content: joined("text"), tool_calls: calls.length ? calls : undefined, reasoning: joined("reasoning") || undefined },
		// OpenCode: input excludes cache, output excludes reasoning (HOSTS.md)
		usage:
			tokens &&
			recordedCounts({ input: finite(tokens.input), output: finite(tokens.output), reasoning: finite(tokens.reasoning), cacheRead: finite(tokens.cache?.read), cacheWrite: finite(tokens.cache?.write), total: finite(tokens.total) }),
		costUsd: cost !== undefined && cost > 0 ? { total: cost } : undefined,
		stopReason: stringOr(data.finish),
		error: isRaw(data.error) ? (stringOr(data.error.data?.message) ?? stringOr(data.error.name)) : undefined,
		metadata: { agent: data.agent ?? data.mode, parentMessageId: data.parentID },
	};
}

function openCodeToolCalls(parts: Raw[]): RecordedToolCall[] {
	return parts.flatMap(part => {
		if (part.type !== "tool" || !isRaw(part.state)) return [];
		const state = part.state;
		const start = finite(state.time?.start) ?? part.time_created ?? 0;
		const child = stringOr(state.metadata?.sessionId);
		const failed = state.status === "error";
		const tool: RecordedToolCall = {
			kind: "tool",
			id: stringOr(part.callID) ?? String(part.id),
			name: stringOr(part.tool) ?? "tool",
			startMs: start,
			endMs: state.status === "completed" || failed ? Math.max(start, finite(state.time?.end) ?? start) : undefined,
			input: state.input,
			output: failed ? state.error : state.output,
			// bash reports a failing command as completed with its exit code: toolEnd calls that an error
			isError: failed,
			error: failed ? (stringOr(state.error) ?? "tool failed") : undefined,
			exitCode: finite(state.metadata?.exit),
			subagent: child ? { sessionId: child, prompts: [] } : undefined,
		};
		return [tool];
	});
}

/** Prompts of one OpenCode session from its rows (sorted by time): a prompt per user message. */
function openCodePrompts(sessionId: string, messages: OpenCodeRows["messages"], partsOf: Map<string, Raw[]>): RecordedPrompt[] {
	const prompts: RecordedPrompt[] = [];
	const byUser = new Map<string, RecordedPrompt>();
	const history: ChatMessage[] = [];
	for (const row of messages) {
		const data = dataOf(row);
		const parts = partsOf.get(row.id) ?? [];
		if (data.role === "user") {
			// synthetic parts are context OpenCode adds (file contents, reminders), not what was typed
			const text = parts
				.filter(part => part.type === "text" && part.synthetic !== true)
				.map(part => stringOr(part.text) ?? "")
				.join("\n");
			const at = finite(data.time?.created) ?? row.time_created;
			const compaction = parts.find(part => part.type === "compaction");
			const prompt: RecordedPrompt = { id: row.id, sessionId, startMs: at, endMs: at, text, steps: [], metadata: compaction && { compaction: true, auto: compaction.auto === true } };
			prompts.push(prompt);
			byUser.set(row.id, prompt);
			history.push({ role: "user", content: text });
			continue;
		}
		const prompt = data.role === "assistant" ? (byUser.get(stringOr(data.parentID) ?? "") ?? prompts.at(-1)) : undefined;
		if (!prompt) continue;
		const call = openCodeLlmCall(row, data, parts, history.slice());
		const tools = openCodeToolCalls(parts);
		prompt.steps.push(call, ...tools);
		prompt.endMs = Math.max(prompt.endMs, call.endMs, ...tools.map(tool => tool.endMs ?? 0));
		if (typeof call.output.content === "string" && call.output.content) prompt.answer = call.output.content;
		prompt.error = call.error;
		prompt.aborted = data.error?.name === "MessageAbortedError" || undefined;
		history.push(call.output, ...tools.map(tool => ({ role: "tool" as const, content: typeof tool.output === "string" ? tool.output : JSON.stringify(tool.output ?? null), tool_call_id: tool.id })));
	}
	for (const prompt of prompts) prompt.steps.sort((a, b) => stepStart(a) - stepStart(b));
	return prompts;
}

/**
 * Sessions from OpenCode's rows, pure. A subagent session is nested into the task tool whose metadata
 * names it; one whose parent or tool is missing stays top-level, so nothing is lost.
 */
function openCodeSessionsFromRows(rows: OpenCodeRows): OpenCodeSession[] {
	const group = <T>(items: T[], key: (item: T) => string) => {
		const groups = new Map<string, T[]>();
		for (const item of items) groups.set(key(item), [...(groups.get(key(item)) ?? []), item]);
		return groups;
	};
	const partsOf = group(
		rows.parts.map(row => ({ ...dataOf(row), id: row.id, messageId: row.message_id, time_created: row.time_created })),
		part => part.messageId,
	);
	const messagesOf = group(rows.messages, row => row.session_id);
	const sessions = rows.sessions.map(row => {
		const messages = (messagesOf.get(row.id) ?? []).sort((a, b) => a.time_created - b.time_created || (a.id < b.id ? -1 : 1));
		const last = messages.length ? dataOf(messages.at(-1)!) : undefined;
		const session: OpenCodeSession = {
			sessionId: row.id,
			parentId: row.parent_id ?? undefined,
			title: row.title,
			directory: row.directory,
			timeUpdated: row.time_updated,
			complete: !last || (last.role === "assistant" && finite(last.time?.completed) !== undefined && last.finish !== "tool-calls"),
			prompts: openCodePrompts(row.id, messages, partsOf),
		};
		return session;
	});
	const byId = new Map(sessions.map(session => [session.sessionId, session]));
	const nested = new Set<string>();
	for (const session of sessions) {
		for (const step of session.prompts.flatMap(prompt => prompt.steps)) {
			const child = step.kind === "tool" && step.subagent?.sessionId ? byId.get(step.subagent.sessionId) : undefined;
			if (step.kind !== "tool" || !child || child.parentId !== session.sessionId) continue;
			step.subagent!.prompts = child.prompts;
			nested.add(child.sessionId);
		}
	}
	return sessions.filter(session => !nested.has(session.sessionId));
}

/** The part of bun:sqlite and node:sqlite used here. */
interface SqliteDb {
	prepare(sql: string): { all(...params: (string | number)[]): unknown[] };
	close(): void;
}

/** OpenCode's database, read session by session (a big history is never in memory at once). */
interface OpenCodeDb {
	/** Top-level sessions (no parent in the database) updated at or after `sinceMs`, oldest first. */
	sessions: { id: string; timeUpdated: number }[];
	/** One top-level session with its subagents (nested), plus any child whose task tool is missing. */
	read(sessionId: string): OpenCodeSession[];
	close(): void;
}

/**
 * Opens OpenCode's database read-only (OpenCode may be running: WAL readers do not block it) with the
 * runtime's SQLite: bun:sqlite under Bun, node:sqlite on Node ≥ 22.5 — no dependency, and a runtime
 * without either (pi's Node 20) gets the reason instead of a crash.
 */
async function openOpenCodeDb(file: string, sinceMs = 0): Promise<OpenCodeDb | { reason: string }> {
	let db: SqliteDb;
	try {
		// variable specifiers keep bundlers and Node's static analysis away from bun: modules
		const [bunSpec, nodeSpec] = ["bun:sqlite", "node:sqlite"];
		const bun = "Bun" in globalThis ? ((await import(bunSpec)) as { Database: new (file: string, options: object) => SqliteDb }) : undefined;
		const node = bun ? undefined : ((await import(nodeSpec)) as { DatabaseSync: new (file: string, options: object) => SqliteDb });
		if (!fs.existsSync(file)) return { reason: `cannot open ${file}: no such file` };
		db = bun ? new bun.Database(file, { readonly: true }) : new node!.DatabaseSync(file, { readOnly: true });
	} catch (error) {
		return { reason: `no SQLite to read ${file} (Bun, or Node ≥ 22.5 with node:sqlite, is needed; this is Node ${process.versions.node}): ${errorText(error)}` };
	}
	try {
		const columns = "id, parent_id, title, directory, time_updated";
		const sessionQuery = db.prepare(`select ${columns} from session where id = ?`);
		const childQuery = db.prepare(`select ${columns} from session where parent_id = ? order by time_created, id`);
		const messageQuery = db.prepare("select id, session_id, time_created, data from message where session_id = ? order by time_created, id");
		const partQuery = db.prepare("select id, message_id, session_id, time_created, data from part where session_id = ? order by message_id, id");
		const tops = db
			.prepare("select s.id as id, s.time_updated as timeUpdated from session s left join session p on p.id = s.parent_id where p.id is null and s.time_updated >= ? order by s.time_created, s.id")
			.all(sinceMs) as OpenCodeDb["sessions"];
		return {
			sessions: tops,
			read: sessionId => {
				const rows: OpenCodeRows = { sessions: sessionQuery.all(sessionId) as OpenCodeRows["sessions"], messages: [], parts: [] };
				// the session and every subagent below it, whenever each last changed
				for (let index = 0; index < rows.sessions.length; index++) {
					const { id } = rows.sessions[index]!;
					rows.sessions.push(...(childQuery.all(id) as OpenCodeRows["sessions"]));
					rows.messages.push(...(messageQuery.all(id) as OpenCodeRows["messages"]));
					rows.parts.push(...(partQuery.all(id) as OpenCodeRows["parts"]));
				}
				return openCodeSessionsFromRows(rows);
			},
			close: () => db.close(),
		};
	} catch (error) {
		db.close();
		return { reason: `cannot read ${file}: ${errorText(error)}` };
	}
}

// ── where history lives ──

/** Each host's default location, by the host's own rules (omp/pi: PI_CODING_AGENT_DIR, XDG; Codex: CODEX_HOME). */
function importSources(env: Env, home: string): { host: ImportHost; path: string }[] {
	const sources: { host: ImportHost; path: string }[] = [{ host: "omp", path: path.join(home, ".omp/agent/sessions") }];
	if (env.XDG_DATA_HOME) sources.push({ host: "omp", path: path.join(env.XDG_DATA_HOME, "omp/sessions") });
	sources.push({ host: "pi", path: path.join(home, ".pi/agent/sessions") });
	if (env.PI_CODING_AGENT_DIR) sources.push({ host: "pi", path: path.join(env.PI_CODING_AGENT_DIR, "sessions") });
	sources.push({ host: "opencode", path: path.join(env.XDG_DATA_HOME || path.join(home, ".local/share"), "opencode/opencode.db") });
	sources.push({ host: "codex", path: path.join(codexHomeDir({ ...env, HOME: home }), "sessions") });
	sources.push({ host: "claude", path: path.join(claudeHomeDir({ ...env, HOME: home }), "projects") });
	return sources;
}

/** Whose record a file is, from its first 4 kB (the name alone can lie); undefined: not a session record. */
function classifyRecord(file: string): ImportHost | undefined {
	let head: Buffer;
	try {
		const fd = fs.openSync(file, "r");
		try {
			head = Buffer.alloc(4096);
			head = head.subarray(0, fs.readSync(fd, head, 0, head.length, 0));
		} finally {
			fs.closeSync(fd);
		}
	} catch {
		return undefined;
	}
	if (head.subarray(0, 16).toString("latin1") === "SQLite format 3\u0000") return "opencode";
	const text = head.toString("utf8");
	// Claude Code: every line names its session; a subagent's transcript is read with its parent's
	if (/^\{[^\n]*?"sessionId"\s*:\s*"/.test(text)) return /[\\/]subagents[\\/]agent-[^\\/]*$/.test(file) ? undefined : "claude";
	// Codex's first line (session_meta with the whole instructions) is longer than the head
	if (/^\{[^\n]{0,200}?"type"\s*:\s*"session_meta"/.test(text) || /(^|[\\/])rollout-[^\\/]*\.jsonl$/.test(file)) return "codex";
	const lines = text.split("\n").slice(0, 6).flatMap(line => rawLine(line) ?? []);
	if (lines[0]?.type === "title") return "omp";
	if (!lines.some(line => line.type === "session")) return undefined;
	const change = lines.find(line => line.type === "model_change");
	if (typeof change?.model === "string") return "omp";
	if (typeof change?.modelId === "string") return "pi";
	return /[\\/]\.?omp[\\/]/.test(file) ? "omp" : "pi";
}

// ── the import run ──

interface ImportOptions {
	paths: string[];
	sinceMs?: number;
	host?: ImportHost;
	dryRun?: boolean;
	force?: boolean;
	/** Called now and then with the counts so far (the CLI draws its progress line from it). */
	progress?: (totals: ImportTotals) => void;
}

interface ImportTotals {
	/** Sessions (omp/pi file groups, OpenCode top-level sessions, Codex rollouts) looked at / to look at. */
	done: number;
	total: number;
	/** Of those, unchanged since the last import (skipped without reading) or sampled out. */
	unchanged: number;
	sampledOut: number;
	/** What was (or, with dryRun, would be) sent: sessions with new prompts, traces, observations. */
	sessions: number;
	traces: number;
	observations: number;
	/** Langfuse's totals: every usage key containing "input" / "output"; the hosts' own costs. */
	inputTokens: number;
	outputTokens: number;
	costUsd: number;
	bytes: number;
	/** Per host, the same counts of what was sent. */
	byHost: Partial<Record<ImportHost, { sessions: number; traces: number; observations: number; inputTokens: number; outputTokens: number; costUsd: number }>>;
	problems: string[];
	/** Langfuse took no data for IMPORT_STALL_MS (or refused it): the run stopped; what was read is spooled. */
	stalled?: string;
}

/** What an import remembers of a session: its last prompt sent, and whether that one could still grow. */
interface ImportMark {
	lastPromptId?: string;
	complete: boolean;
}

/** Per omp/pi file group: the files' sizes and times, and a mark per session; per OpenCode database: per session. */
interface ImportState {
	signature?: string;
	sessions: Record<string, ImportMark & { timeUpdated?: number }>;
}

/** Records queued, or bytes read, before the run waits for the exporter; batches waiting before it stops reading. */
const IMPORT_FLUSH_RECORDS = 2_000;
const IMPORT_FLUSH_BYTES = 4_000_000;
const IMPORT_MAX_WAITING_BATCHES = 4;
const IMPORT_STALL_MS = 30_000;
/** At the end, with everything safe in the spool: how long to keep sending while Langfuse takes nothing. */
const IMPORT_FINAL_WAIT_MS = 10_000;

/** The prompts to send given the last mark: after the marked one, plus the marked one if it was still open. */
function promptsToSend(prompts: RecordedPrompt[], mark: ImportMark | undefined): RecordedPrompt[] {
	const index = mark?.lastPromptId ? prompts.findIndex(prompt => prompt.id === mark.lastPromptId) : -1;
	return index < 0 ? prompts : prompts.slice(mark!.complete ? index + 1 : index);
}

const markAfter = (prompts: RecordedPrompt[], complete: boolean, before?: ImportMark): ImportMark => ({ lastPromptId: prompts.at(-1)?.id ?? before?.lastPromptId, complete: prompts.length ? complete : before?.complete ?? complete });

function importStateFile(config: Config, source: string): string {
	return path.join(config.spoolDir, "import", `${hashId(path.resolve(source), 16)}.json`);
}

function readImportState(file: string): ImportState {
	try {
		const saved = JSON.parse(fs.readFileSync(file, "utf8"));
		if (isRaw(saved) && isRaw(saved.sessions)) return saved as ImportState;
	} catch {
		// never imported, or unreadable: everything is new
	}
	return { sessions: {} };
}

/** Folders are walked for .jsonl records; a file's host comes from its content. Sorted, so runs are repeatable. */
function findRecords(root: string, host: ImportHost | undefined, out: { host: ImportHost; path: string }[]): void {
	let stat: fs.Stats;
	try {
		stat = fs.statSync(root);
	} catch {
		return;
	}
	if (stat.isDirectory()) {
		const entries = call(() => fs.readdirSync(root, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) ?? [];
		for (const entry of entries) if (entry.isDirectory() || /\.(jsonl|db)$/.test(entry.name)) findRecords(path.join(root, entry.name), host, out);
		return;
	}
	const found = classifyRecord(root);
	if (found && (!host || host === found)) out.push({ host: found, path: root });
}

/**
 * Imports what the hosts recorded through the runtime's exporter (everything that applies live applies:
 * sampling, export mode, redaction, truncation, spool, retries). Paced: records go out session by session
 * and the run waits while the exporter is behind. What was imported is remembered per file only after its
 * records are spooled or confirmed, so an interrupted run resumes where it stopped (re-sent prompts update
 * the same traces: every id is derived from the host's ids).
 */
async function runImport(runtime: Pick<Runtime, "config" | "log" | "exporter">, options: ImportOptions): Promise<ImportTotals> {
	const { config, exporter } = runtime;
	const totals: ImportTotals = { done: 0, total: 0, unchanged: 0, sampledOut: 0, sessions: 0, traces: 0, observations: 0, inputTokens: 0, outputTokens: 0, costUsd: 0, bytes: 0, byHost: {}, problems: [] };
	const roots = options.paths.length ? options.paths.map(p => ({ host: options.host, path: p })) : importSources(process.env, os.homedir()).filter(source => !options.host || source.host === options.host);
	const records: { host: ImportHost; path: string }[] = [];
	for (const root of roots) {
		const before = records.length;
		findRecords(root.path, root.host ?? options.host, records);
		// a path the user gave that gives nothing is said; an absent default location is not
		if (options.paths.length && records.length === before) totals.problems.push(`${root.path}: ${fs.existsSync(root.path) ? "no session record here" : "no such file or folder"}${options.host ? ` (for --host ${options.host})` : ""}`);
	}
	const since = options.sinceMs ?? 0;
	const found = new Set<string>();
	const wanted = records.filter(record => !found.has(path.resolve(record.path)) && found.add(path.resolve(record.path)));

	// omp/pi: a session file with its subagents' files (in the folder of the same name, nested alike) is one unit
	const piFolders = new Map<string, string[]>();
	for (const record of wanted) {
		if (record.host !== "omp" && record.host !== "pi") continue;
		const file = path.resolve(record.path);
		piFolders.set(path.dirname(file), [...(piFolders.get(path.dirname(file)) ?? []), file]);
	}
	const withSubagents = (file: string): string[] => [file, ...(piFolders.get(file.slice(0, -".jsonl".length)) ?? []).flatMap(withSubagents)];
	const units: { host: ImportHost; files: string[] }[] = [];
	for (const record of wanted) {
		const file = path.resolve(record.path);
		if (record.host !== "omp" && record.host !== "pi") units.push({ host: record.host, files: [file] });
		else if (!found.has(`${path.dirname(file)}.jsonl`)) units.push({ host: record.host, files: withSubagents(file) });
	}
	const databases = new Map<string, OpenCodeDb>();
	for (const unit of units) {
		if (unit.host !== "opencode") continue;
		const db = await openOpenCodeDb(unit.files[0]!, since);
		if ("reason" in db) totals.problems.push(`opencode: ${db.reason}`);
		else databases.set(unit.files[0]!, db), (totals.bytes += call(() => fs.statSync(unit.files[0]!).size) ?? 0);
	}
	totals.total = units.reduce((sum, unit) => sum + (unit.host === "opencode" ? (databases.get(unit.files[0]!)?.sessions.length ?? 0) : 1), 0);

	/** State file → what saves it, run once the records it covers are spooled or sent. */
	const pending = new Map<string, () => void>();
	/** Spools (or sends) what is queued, then saves the marks of what it holds; waits while Langfuse is behind. */
	let settledBytes = 0;
	const settle = async (force: boolean) => {
		if (!exporter || (!force && exporter.status.queued < IMPORT_FLUSH_RECORDS && totals.bytes - settledBytes < IMPORT_FLUSH_BYTES)) return;
		settledBytes = totals.bytes;
		/** Saves the marks once what they cover is on disk (spooled) or confirmed. */
		const commit = () => {
			const { queued, waitingBatches } = exporter.status;
			if (!exporter.spool.available && (queued > 0 || waitingBatches > 0)) return false;
			for (const save of pending.values()) save();
			pending.clear();
			return true;
		};
		await exporter.flush(Date.now()); // a deadline already passed: to the spool, no sending yet
		commit();
		let progressAt = Date.now();
		let sent = exporter.status.sentSpans;
		for (;;) {
			await exporter.flush();
			const status = exporter.status;
			const safe = commit();
			if (status.waitingBatches <= (force ? 0 : IMPORT_MAX_WAITING_BATCHES) && safe) return;
			if (status.sentSpans !== sent) (sent = status.sentSpans), (progressAt = Date.now());
			if (Date.now() - progressAt > (force && exporter.spool.available ? IMPORT_FINAL_WAIT_MS : IMPORT_STALL_MS) || status.blocked) {
				if (!force || !exporter.spool.available) totals.stalled = status.blocked ?? status.lastError ?? "no answer";
				return;
			}
			await new Promise(resolve => setTimeout(resolve, 250));
		}
	};

	/** A sink for one session's records: counted once per observation, queued unless dry-run. */
	const sinkFor = (host: ImportHost): RecordSink => {
		const seen = new Set<string>();
		const hostTotals = (totals.byHost[host] ??= { sessions: 0, traces: 0, observations: 0, inputTokens: 0, outputTokens: 0, costUsd: 0 });
		return observation => {
			if (!options.dryRun) exporter?.enqueue(observation);
			const key = `${observation.traceId}/${observation.id}`;
			if (seen.has(key)) return;
			const sum = (part: string) => Object.entries(observation.usage ?? {}).reduce((total, [name, value]) => total + (name.includes(part) ? value : 0), 0);
			const counts = { observations: 1, traces: observation.trace ? 1 : 0, sessions: seen.has(observation.sessionId) ? 0 : 1, inputTokens: sum("input"), outputTokens: sum("output"), costUsd: observation.cost?.total ?? 0 };
			seen.add(key).add(observation.sessionId);
			for (const [name, value] of Object.entries(counts) as [keyof typeof counts, number][]) (totals[name] += value), (hostTotals[name] += value);
		};
	};

	/** One session's new prompts → records. */
	const record = (host: ImportHost, info: HostSessionInfo, prompts: RecordedPrompt[], ids: (sessionId: string, promptId: string) => TranscriptIds, tags: string[] = [], title?: string) => {
		if (!prompts.length) return;
		const recorder = new SessionRecorder(sinkFor(host), sessionInfo(config, info, tags));
		// OpenCode names its traces after the session title once it has one, live too
		if (title && !OC_PLACEHOLDER_TITLE.test(title)) recorder.rename(title);
		const transcript: TranscriptOptions = {
			turnKey: host === "opencode" ? llm => llm.id : (_llm, index) => String(index),
			// a subagent is traced with its parent (OpenCode's rule); omp samples it by its own id, as live
			subagentIds: (sessionId, prompt) => (host !== "omp" || sampled(config, sessionId) ? ids(sessionId, prompt.id) : undefined),
		};
		for (const prompt of prompts) recordTranscript(recorder, prompt, ids(info.sessionId, prompt.id), transcript);
	};
	const tick = () => options.progress?.(totals);

	try {
		for (const unit of units) {
			if (totals.stalled) break;
			if (unit.host === "opencode") await importOpenCode(unit.files[0]!);
			else if (unit.host === "codex" || unit.host === "claude") await importRecordFile(unit.host, unit.files[0]!);
			else importPi(unit.host, unit.files);
			await settle(false);
			tick();
		}
		await settle(true);
	} finally {
		for (const db of databases.values()) db.close();
	}
	tick();
	return totals;

	function importPi(host: "omp" | "pi", files: string[]): void {
		totals.done++;
		const stats = files.map(file => call(() => fs.statSync(file)));
		const signature = files.map((file, index) => `${file}:${stats[index]?.size}:${stats[index]?.mtimeMs}`).join("|");
		const stateFile = importStateFile(config, files[0]!);
		const state = options.force ? { sessions: {} } : readImportState(stateFile);
		if (state.signature === signature || (stats[0]?.mtimeMs ?? 0) < since) return void totals.unchanged++;
		const parsed = files.flatMap(file => {
			const text = call(() => fs.readFileSync(file, "utf8"));
			totals.bytes += text?.length ?? 0;
			return text === undefined ? [] : [{ path: file, parsed: parsePiSessionFile(text.split("\n")) }];
		});
		const next: ImportState = { signature, sessions: { ...state.sessions } };
		for (const { path: file, parsed: session } of linkPiSubagents(parsed)) {
			if (!session.sessionId) continue;
			if (!sampled(config, session.sessionId)) {
				totals.sampledOut++;
				continue;
			}
			const mark = state.sessions[session.sessionId];
			const prompts = promptsToSend(session.prompts, mark).filter(prompt => prompt.endMs >= since);
			const parentFile = session.parentSession;
			const parentId = parentFile ? /_([0-9a-f-]{36})\.jsonl$/.exec(parentFile)?.[1] : undefined;
			const metadata = { host, cwd: session.cwd, sessionFile: file, parentSessionId: parentId, parentSessionFile: parentFile };
			record(host, { sessionId: session.sessionId, host, cwd: session.cwd, metadata }, prompts, piIds, parentFile ? ["subagent"] : []);
			next.sessions[session.sessionId] = markAfter(prompts, session.complete, mark);
		}
		if (!options.dryRun) pending.set(stateFile, () => writePrivateJson(stateFile, next));
	}

	async function importOpenCode(file: string): Promise<void> {
		const db = databases.get(file);
		if (!db) return;
		const stateFile = importStateFile(config, file);
		const state = options.force ? { sessions: {} } : readImportState(stateFile);
		for (const { id, timeUpdated } of db.sessions) {
			totals.done++;
			if (state.sessions[id]?.timeUpdated === timeUpdated) {
				totals.unchanged++;
				continue;
			}
			if (!sampled(config, id)) {
				totals.sampledOut++;
				continue;
			}
			for (const session of db.read(id)) {
				const mark = state.sessions[session.sessionId];
				const prompts = promptsToSend(session.prompts, mark).filter(prompt => prompt.endMs >= since);
				const metadata = { host: "opencode", cwd: session.directory, title: session.title, parentSessionId: session.parentId };
				record("opencode", { sessionId: session.sessionId, host: "opencode", cwd: session.directory, metadata }, prompts, ocIds, session.parentId ? ["subagent"] : [], session.title);
				state.sessions[session.sessionId] = { ...markAfter(prompts, session.complete, mark), timeUpdated: session.timeUpdated };
			}
			// at commit time the state holds exactly what was queued: the run waits for each commit
			if (!options.dryRun) pending.set(stateFile, () => writePrivateJson(stateFile, state));
			await settle(false);
			tick();
		}
	}

	/** Codex rollouts and Claude Code transcripts: their hooks' readers and cursors (a turn sent by either is not sent again). */
	async function importRecordFile(host: "codex" | "claude", file: string): Promise<void> {
		totals.done++;
		const stat = call(() => fs.statSync(file));
		if (!stat || stat.mtimeMs < since) return void totals.unchanged++;
		const cursor = cursorFile(config, host, file);
		const unlock = options.dryRun ? () => {} : await lockCursor(cursor, 1_000);
		if (!unlock) return void totals.problems.push(`${host}: ${file} is being read by another run; skipped`);
		try {
			const reader = { config, log: runtime.log };
			// Claude Code: a prompt counts when it finished; in a transcript untouched for a day, the last one too (as SessionEnd)
			const event = stat.mtimeMs < Date.now() - 86_400_000 ? "SessionEnd" : "Stop";
			const read = host === "codex" ? await readCodexRollout(reader, file, {}, options.force) : await readClaudeTranscript(reader, { event, transcript: file }, options.force);
			totals.bytes += stat.size;
			if (!options.dryRun) pending.set(cursor, read.commit);
			if (!read.prompts) return void totals.unchanged++;
			if (!read.records.length) return void totals.sampledOut++;
			read.records.forEach(sinkFor(host));
		} finally {
			unlock();
		}
	}
}

// ── §7.6 the one export ───────────────────────────────────────────────────────────────────────────

/**
 * The only export (OpenCode calls every export as a plugin). omp and pi pass an API object with
 * `on`; OpenCode passes its plugin input and must always get a hooks object back, even when
 * tracing is off or something went wrong — a missing one breaks OpenCode for every plugin.
 */
export default function langfuse(host: any, _options?: unknown): any {
	// read through call(): a host object whose getters (or `in`) throw must not throw into the host
	const isPiHost = call(() => Boolean(host) && typeof host.on === "function" && !("client" in host)) === true;
	try {
		const runtime = processRuntime();
		if (isPiHost) return void attachPiHost(host, runtime);
		return attachOpenCode(host, runtime);
	} catch (error) {
		try {
			process.stderr.write(`${LOG_PREFIX} could not start (tracing off): ${errorText(error)}\n`);
		} catch {}
		return isPiHost ? undefined : {};
	}
}

/** What langfuse.test.ts reaches: a property, not an export, so hosts never see it as a plugin. */
const internals = {
	readConfig,
	makeRedactor,
	sanitize,
	prepareRecord,
	encodeRecord,
	itemBuffer,
	otlpBody,
	ingestionEvents,
	interpretResponse,
	SessionRecorder,
	Exporter,
	Spool,
	destinationOf,
	Logger,
	createRuntime,
	attachPiHost,
	attachOpenCode,
	usageDetails,
	costDetails,
	ChatRequest,
	ChatCache,
	SanitizedTexts,
	chatRequest,
	chatMessagesOf,
	chatOutput,
	prepareChat,
	parseRollout,
	recordTranscript,
	parseClaudeTranscript,
	nextClaudeCursor,
	parsePiSessionFile,
	linkPiSubagents,
	openOpenCodeDb,
	importSources,
	classifyRecord,
	promptsToSend,
	runImport,
};
Object.defineProperty(langfuse, "internals", { enumerable: false, value: internals });
/** Type-only, erased at runtime (OpenCode never sees it): lets tsc check the tests against the code. */
export type Internals = typeof internals;

// ════════════════════════════════════════════════════════════════════════════════════════════════
// §8 CLI — `bun langfuse.ts <command>`. It runs only when this file is Bun's main module (the guard at
//    the end of this section), never when a host imports it, so none of this runs inside an agent.
// ════════════════════════════════════════════════════════════════════════════════════════════════

const USAGE = `langfuse.ts ${VERSION} — Langfuse tracing for omp, pi, OpenCode, Codex and Claude Code

usage: bun langfuse.ts <command>

  doctor         check config, host, keys, transport and spool, then send a test trace (exit 0 = tracing works)
  flush          send everything waiting in the spool now (exit 0 = nothing left)
  import [PATH…] send your past omp, pi, OpenCode, Codex and Claude Code sessions as the traces live tracing makes
                 (PATH: a session file, a folder, OpenCode's database; none: each host's default place)
                 --since DATE  --host omp|pi|opencode|codex|claude  --dry-run (count, send nothing)  --force (send again)
  codex-config   print the ~/.codex/config.toml lines that trace Codex (notify, optional [otel])
  codex-notify   for Codex's notify = [...]: export the finished turn from its rollout file (silent, exit 0)
  codex-hook     for a Codex Stop hook in hooks.json: the same, JSON on stdin (silent, exit 0)
  claude-config  print the hooks block for ~/.claude/settings.json that traces Claude Code
  claude-hook    for Claude Code's Stop, StopFailure, SubagentStop and SessionEnd hooks: export what is new
                 in the session's transcript, JSON on stdin (silent, exit 0)
  help           this text

Configuration is read from the environment: LANGFUSE_PUBLIC_KEY, LANGFUSE_SECRET_KEY, LANGFUSE_HOST, …
`;

async function runCli(argv: string[]): Promise<number> {
	const [command, ...args] = argv;
	switch (command) {
		case "codex-notify":
			return hookCli("codex", runtime => runCodexExport(codexNotifyRequest(args), runtime));
		case "codex-hook":
			return hookCli("codex", async runtime => runCodexExport(codexHookRequest(await readStdin(500)), runtime));
		case "codex-config":
			return codexConfig();
		case "claude-hook":
			if (args[0] === "--background") return hookCli("claude", async runtime => runClaudeExport(parseJsonText(args[1]) as ClaudeRequest, runtime, true));
			return hookCli("claude", async runtime => runClaudeExport(claudeHookRequest(await readStdin(500)), runtime));
		case "claude-config":
			return claudeConfig();
		case "doctor":
			return doctor();
		case "flush":
			return flushCli();
		case "import":
			return importCli(args);
		case undefined:
		case "help":
		case "--help":
		case "-h":
			process.stdout.write(USAGE);
			return 0;
		default:
			// A hook command this version does not know (a typo, a newer config) must not hurt the host: a
			// Claude Code Stop hook that exits 2 makes Claude continue, again and again.
			if (/^(claude|codex)-/.test(command)) return 0;
			process.stderr.write(`unknown command: ${command}\n\n${USAGE}`);
			return 2;
	}
}

/** Hook commands (Codex, Claude Code): never a line on stdout/stderr (hosts show them) unless LANGFUSE_DEBUG, always exit 0. */
async function hookCli(host: string, run: (runtime: Runtime) => Promise<void>): Promise<number> {
	let runtime: Runtime | undefined;
	try {
		runtime = createRuntime(process.env, { quiet: true, replaySpool: false });
		await run(runtime);
	} catch (error) {
		runtime?.log.debug(`${host}: ${errorText(error)}`);
	}
	return 0;
}

/** All of stdin, or what arrived within `waitMs` (a hook started by hand must not hang). */
function readStdin(waitMs: number): Promise<string> {
	if (process.stdin.isTTY) return Promise.resolve("");
	return new Promise(resolve => {
		const chunks: Buffer[] = [];
		const done = () => {
			clearTimeout(timer);
			process.stdin.pause();
			resolve(Buffer.concat(chunks).toString("utf8"));
		};
		const timer = setTimeout(done, waitMs);
		process.stdin.on("data", chunk => chunks.push(Buffer.from(chunk)));
		process.stdin.once("end", done);
		process.stdin.once("error", done);
	});
}

/** This file's absolute path (what Codex must run): Bun and jiti both give a module its `__filename`. */
function selfPath(): string {
	return typeof __filename === "string" ? __filename : "";
}

const tomlString = (text: string) => JSON.stringify(text);
const shellQuote = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;

/** `codex-config`: the config.toml lines, with absolute paths and (for [otel]) a ready Basic header. */
function codexConfig(): number {
	const { config } = readConfig(process.env);
	const bun = process.execPath;
	const self = selfPath();
	const haveKeys = Boolean(config.publicKey && config.secretKey);
	const host = config.host || "https://cloud.langfuse.com";
	const hook = JSON.stringify({ hooks: [{ type: "command", command: `${shellQuote(bun)} ${shellQuote(self)} codex-hook` }] });
	// The one place a key is printed on purpose: Codex cannot expand ${VAR} in [otel] headers.
	const authorization = haveKeys ? basicAuth(config) : "Basic <base64 of LANGFUSE_PUBLIC_KEY:LANGFUSE_SECRET_KEY — set both and run this again>";
	const lines = [
		`# ${codexHomeDir(process.env)}/config.toml — Langfuse tracing for Codex (langfuse.ts ${VERSION})`,
		"# Put the notify line at the top level, before the first [table]. Codex runs it after every turn;",
		"# it reads the turn from the rollout file and sends prompt, answer, generations and tool calls.",
		`notify = [${[bun, self, "codex-notify"].map(tomlString).join(", ")}]`,
		"",
		"# Codex passes its own environment to notify: export LANGFUSE_PUBLIC_KEY, LANGFUSE_SECRET_KEY and",
		"# LANGFUSE_HOST in the shell that starts codex. Check with: bun langfuse.ts doctor",
		"#",
		"# Codex runs only one notify program. If yours is taken, use Stop hooks instead, in",
		`# ${codexHomeDir(process.env)}/hooks.json (review and trust them with /hooks in codex):`,
		`#   {"hooks": {"Stop": [${hook}], "SubagentStop": [${hook}]}}`,
		"",
		"# Optional: Codex's native OpenTelemetry traces as well. They carry token counts and timings",
		"# but no prompt, completion or tool output text (that is what notify adds), plus many internal",
		"# spans. Codex does not expand ${VAR} in headers, so the header below holds your keys:",
		"# keep config.toml private (chmod 600).",
		"[otel]",
		`trace_exporter = { otlp-http = { endpoint = ${tomlString(`${host}/api/public/otel/v1/traces`)}, protocol = "json", headers = { "Authorization" = ${tomlString(authorization)} } } }`,
	];
	process.stdout.write(`${lines.join("\n")}\n`);
	if (!haveKeys) process.stderr.write(`${LOG_PREFIX} ${config.disabledReason ?? "keys not set"}: the [otel] header above is a placeholder\n`);
	return haveKeys ? 0 : 1;
}

function claudeHomeDir(env: Env): string {
	return env.CLAUDE_CONFIG_DIR?.trim() || path.join(env.HOME || os.homedir(), ".claude");
}

/** `claude-config`: the hooks block for settings.json with absolute paths (JSON on stdout, hints on stderr). */
function claudeConfig(): number {
	const { config } = readConfig(process.env);
	const command = `${shellQuote(process.execPath)} ${shellQuote(selfPath())} claude-hook`;
	// timeout (seconds): SessionEnd hooks are cancelled after ~1.5 s without one; the hook ends itself after ~1 s.
	const hooks = Object.fromEntries([...CLAUDE_EVENTS].map(event => [event, [{ hooks: [{ type: "command", command, timeout: 5 }] }]]));
	process.stdout.write(`${JSON.stringify({ hooks }, null, 2)}\n`);
	const hints = [
		`merge "hooks" into ${claudeHomeDir(process.env)}/settings.json (or a project's .claude/settings.json).`,
		"Claude Code passes its environment to hooks: export LANGFUSE_PUBLIC_KEY, LANGFUSE_SECRET_KEY and LANGFUSE_HOST",
		'in the shell that starts claude, or put them under "env" in settings.json. Check with: bun langfuse.ts doctor',
	];
	if (!config.publicKey || !config.secretKey) hints.push(`${config.disabledReason ?? "keys not set"}: nothing is traced until they are`);
	process.stderr.write(hints.map(hint => `${LOG_PREFIX} ${hint}\n`).join(""));
	return config.publicKey && config.secretKey ? 0 : 1;
}

type Mark = "ok" | "warn" | "fail" | "info";

/** `doctor`: one line per check, each failure with its fix; exit 0 only when tracing will work. */
async function doctor(): Promise<number> {
	const { config, problems, redact, log } = diagnostics(process.env, { quiet: true });
	const marks: Record<Mark, string> = { ok: "✓", warn: "!", fail: "✗", info: "·" };
	let healthy = true;
	const line = (mark: Mark, label: string, text: string) => {
		if (mark === "fail") healthy = false;
		process.stdout.write(`${redact(`${marks[mark]} ${label.padEnd(9)} ${text}`)}\n`);
	};
	const finish = () => {
		line(healthy ? "ok" : "info", "result", healthy ? `ready: traces go to ${config.host}` : "not ready: fix the ✗ lines above, then run doctor again");
		return healthy ? 0 : 1;
	};

	line(
		config.enabled ? "ok" : "fail",
		"config",
		`host ${config.host || "(invalid)"}, public key ${maskKey(config.publicKey)}, secret key ${maskKey(config.secretKey)}, transport ${config.transport}, mode ${config.exportMode}` +
			(config.enabled ? "" : ` — tracing off: ${config.disabledReason}`),
	);
	for (const problem of problems) line("warn", "config", problem);
	if (!config.host) return finish();

	const health = await langfuseGet(config, "/api/public/health", false);
	if (health.status === 0) {
		line("fail", "host", `unreachable: ${config.host} (${health.error}) — check LANGFUSE_HOST, the network, a proxy or VPN`);
		await spoolLine(config, line);
		return finish();
	}
	const version = (health.body as any)?.version;
	if (!health.ok) line("fail", "host", `${config.host}/api/public/health answered HTTP ${health.status} — is LANGFUSE_HOST a Langfuse server (no /api suffix)?`);
	else line("ok", "host", `reachable, Langfuse ${version ?? "(version unknown)"}`);

	let keysOk = false;
	if (!config.publicKey || !config.secretKey) {
		line("fail", "keys", "set LANGFUSE_PUBLIC_KEY=pk-lf-… and LANGFUSE_SECRET_KEY=sk-lf-… (Langfuse → project settings → API keys)");
	} else if (health.ok) {
		const projects = await langfuseGet(config, "/api/public/projects");
		if (projects.status === 401 || projects.status === 403) {
			line("fail", "keys", `wrong key: ${config.host} answered HTTP ${projects.status} — LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY must be a pair from a project on this host (EU vs US cloud?)`);
		} else if (!projects.ok) {
			line("fail", "keys", `could not check: /api/public/projects answered ${projects.status ? `HTTP ${projects.status}` : projects.error}`);
		} else {
			const project = (projects.body as any)?.data?.[0];
			line("ok", "keys", `valid${project ? ` for project ${project.name ?? "?"} (${project.id})` : ""}`);
			keysOk = true;
		}
	}

	let transportOk = false;
	if (keysOk) {
		const otlp = await postEmptyOtlp(config);
		if (otlp.status >= 200 && otlp.status < 300) {
			transportOk = true;
			if (config.transport === "ingestion") line("warn", "transport", "the server takes OTLP, but LANGFUSE_TRANSPORT=ingestion uses the legacy API (gone on Langfuse Cloud) — unset it");
			else line("ok", "transport", "OTLP: /api/public/otel/v1/traces accepts traces");
		} else if (otlp.status === 404 || otlp.status === 405) {
			if (config.transport === "otel") {
				line("fail", "transport", `server without OTLP: ${config.host} answered HTTP ${otlp.status} on /api/public/otel/v1/traces (Langfuse older than v3.22) — set LANGFUSE_TRANSPORT=ingestion (or auto)`);
			} else {
				transportOk = true;
				line("ok", "transport", `legacy ingestion API (the server has no OTLP endpoint; LANGFUSE_TRANSPORT=${config.transport})`);
			}
		} else if (otlp.status === 401 || otlp.status === 403) {
			line("fail", "transport", `the OTLP endpoint answered HTTP ${otlp.status} — check the keys`);
		} else {
			line("fail", "transport", `the OTLP endpoint answered ${otlp.status ? `HTTP ${otlp.status}` : otlp.error} — try again, or check a proxy in front of Langfuse`);
		}
	}

	await spoolLine(config, line);
	codexLine(line);
	claudeLine(line);

	if (healthy && config.enabled && transportOk) {
		const result = await sendTestTrace({ config, redact, log });
		line(result.ok ? "ok" : "fail", "test", result.ok ? `test trace sent and confirmed: ${result.detail}` : `test trace not confirmed: ${result.detail}`);
	}
	return finish();
}

/** The transport probe: an empty OTLP export is accepted (200) by any Langfuse with the endpoint. */
async function postEmptyOtlp(config: Config): Promise<{ status: number; error?: string }> {
	const answer = await httpRequest(config, OTLP_PATH, { body: '{"resourceSpans":[]}' });
	return { status: answer.status, error: answer.error };
}

async function spoolLine(config: Config, line: (mark: Mark, label: string, text: string) => void): Promise<void> {
	const spool = new Spool(config.spoolDir, destinationOf(config), config.maxSpoolBytes, config.retentionDays * 86_400_000, new Logger(text => text, false, () => {}));
	if (!spool.available) return line("warn", "spool", `${config.spoolDir} is not writable: unsent data would live in memory only — set LANGFUSE_SPOOL_DIR`);
	const stats = await spool.stats();
	if (stats.files === 0) return line("ok", "spool", `${config.spoolDir}: empty`);
	line("warn", "spool", `${config.spoolDir}: ${stats.files} batch file(s), ${formatBytes(stats.bytes)}, oldest ${formatAge(stats.oldestMs ?? 0)} old — run \`bun langfuse.ts flush\``);
}

/** Informational: is this host wired to this file? Silent when none of the host's config files exists. */
function hostLine(line: (mark: Mark, label: string, text: string) => void, label: string, files: string[], wired: RegExp, wiredText: (file: string) => string, hint: string): void {
	const texts = files.map(file => ({ file, text: call(() => fs.readFileSync(file, "utf8")) }));
	if (!texts.some(entry => entry.text !== undefined)) return;
	const found = texts.find(entry => entry.text !== undefined && wired.test(entry.text));
	if (found) line("ok", label, wiredText(found.file));
	else line("info", label, hint);
}

function codexLine(line: (mark: Mark, label: string, text: string) => void): void {
	const home = codexHomeDir(process.env);
	const files = [path.join(home, "config.toml"), path.join(home, "hooks.json")];
	hostLine(line, "codex", files, /^\s*notify\s*=.*codex-notify|codex-hook/m, () => `${home} runs langfuse.ts after every turn`, `${home} does not run langfuse.ts yet — \`bun langfuse.ts codex-config\` prints the line to add`);
}

/** User settings, then this project's (doctor runs where the user works). */
function claudeLine(line: (mark: Mark, label: string, text: string) => void): void {
	const home = claudeHomeDir(process.env);
	const files = [home, path.join(process.cwd(), ".claude")].flatMap(dir => [path.join(dir, "settings.json"), path.join(dir, "settings.local.json")]);
	hostLine(line, "claude", files, /claude-hook/, file => `${file} runs langfuse.ts after every prompt`, `${home}/settings.json does not run langfuse.ts yet — \`bun langfuse.ts claude-config\` prints the hooks to add`);
}

function formatAge(ms: number): string {
	const minutes = Math.round(ms / 60_000);
	if (minutes < 1) return `${Math.max(0, Math.round(ms / 1000))} s`;
	if (minutes < 120) return `${minutes} min`;
	const hours = Math.round(minutes / 60);
	return hours < 48 ? `${hours} h` : `${Math.round(hours / 24)} days`;
}

/** `import`: reads the hosts' records (§7.5) and sends them through the same exporter as live tracing. */
async function importCli(args: string[]): Promise<number> {
	const options: ImportOptions = { paths: [] };
	const hosts: ImportHost[] = ["omp", "pi", "opencode", "codex", "claude"];
	for (let index = 0; index < args.length; index++) {
		const arg = args[index]!;
		const value = args[index + 1] ?? "";
		if (arg === "--dry-run") options.dryRun = true;
		else if (arg === "--force") options.force = true;
		else if (arg === "--since" && Number.isFinite(Date.parse(value))) (options.sinceMs = Date.parse(value)), index++;
		else if (arg === "--host" && hosts.includes(value as ImportHost)) (options.host = value as ImportHost), index++;
		else if (arg.startsWith("-")) {
			process.stderr.write(`import: bad option ${arg}${value && !value.startsWith("-") ? ` ${value}` : ""} (--since DATE, --host ${hosts.join("|")}, --dry-run, --force)\n`);
			return 2;
		} else options.paths.push(arg);
	}
	const runtime = options.dryRun ? { ...diagnostics(process.env), exporter: undefined } : createRuntime(process.env);
	const out = (text: string) => process.stdout.write(`${runtime.redact(text)}\n`);
	if (!options.dryRun && !runtime.exporter) {
		out(`import: tracing is off (${runtime.config.disabledReason}); nothing sent. --dry-run shows what would be.`);
		return 1;
	}
	const tty = process.stderr.isTTY === true;
	let drawn = 0;
	options.progress = totals => {
		if (!tty || Date.now() - drawn < 100) return;
		drawn = Date.now();
		process.stderr.write(`\r\x1b[2Kimport: ${totals.done}/${totals.total} session(s), ${totals.observations} observation(s), ${formatBytes(totals.bytes)} read`);
	};
	const totals = await runImport(runtime, options);
	if (tty) process.stderr.write("\r\x1b[2K");
	const tokens = (t: { inputTokens: number; outputTokens: number; costUsd: number }) => `tokens ${t.inputTokens} in / ${t.outputTokens} out, cost $${t.costUsd.toFixed(6)}`;
	out(`import${options.dryRun ? " (dry run: nothing sent)" : ""}: ${totals.done} session(s) read, ${formatBytes(totals.bytes)} → ${totals.sessions} session(s), ${totals.traces} trace(s), ${totals.observations} observation(s); ${tokens(totals)}`);
	for (const [host, t] of Object.entries(totals.byHost)) out(`  ${host.padEnd(8)} ${t.sessions} session(s), ${t.traces} trace(s), ${t.observations} observation(s); ${tokens(t)}`);
	if (totals.unchanged || totals.sampledOut) out(`  skipped: ${totals.unchanged} unchanged since the last import, ${totals.sampledOut} sampled out (LANGFUSE_SAMPLE_RATE)`);
	for (const problem of totals.problems) out(`  ${problem}`);
	const status = runtime.exporter?.status;
	const waiting = status ? status.queued + status.waitingBatches : 0;
	if (totals.stalled) out(`  stopped: Langfuse is not taking data (${totals.stalled}); what was read waits in the spool. Run import again later.`);
	else if (waiting) out(`  ${status!.waitingBatches} batch(es) wait in the spool (${status!.lastError ?? "sending"}): \`bun langfuse.ts flush\` sends them`);
	else if (status) out(`  all delivered to ${runtime.config.host}`);
	runtime.exporter?.stop();
	return totals.stalled || totals.problems.length || waiting ? 1 : 0;
}

/**
 * `flush`: claim every spooled batch of this destination (and of langfuse.ts 0.1, which recorded none)
 * that no live process owns, send it now, report; batches of other Langfuse projects are only named.
 * Exit 0 when none of ours is left.
 */
async function flushCli(): Promise<number> {
	const { config, redact, log } = diagnostics(process.env);
	const out = (text: string) => process.stdout.write(`${redact(text)}\n`);
	const exporter = new Exporter(config, redact, log);
	const before = await exporter.spool.stats({ mine: true });
	const others = await exporter.spool.others();
	const reportOthers = () => {
		if (others.length === 0) return;
		const count = others.reduce((sum, other) => sum + other.files, 0);
		const list = others.map(other => `${other.host} (${maskKey(other.publicKey)}): ${other.files}`).join(", ");
		out(`flush: ${count} batch file(s) belong to other Langfuse projects and wait for their keys (LANGFUSE_HOST + LANGFUSE_PUBLIC_KEY/SECRET_KEY): ${list}`);
	};
	if (before.files === 0) {
		out(`flush: nothing waiting in ${config.spoolDir}${config.enabled ? ` for ${config.host}` : ""}`);
		reportOthers();
		return 0;
	}
	if (!config.enabled) {
		out(`flush: ${before.files} batch file(s) wait in ${config.spoolDir}, but tracing is off (${config.disabledReason})`);
		return 1;
	}
	const tty = process.stdout.isTTY === true;
	out(`flush: ${before.files} batch file(s), ${formatBytes(before.bytes)} in ${config.spoolDir} → ${config.host}`);
	let claimed = 0;
	const progress = () => {
		if (tty) process.stdout.write(`\rflush: ${claimed - exporter.status.waitingBatches}/${claimed} batch(es) done, ${exporter.status.sentSpans} observation(s) sent `);
	};
	const stop = exporter.onChange(progress);
	const deadline = Date.now() + 60_000;
	try {
		claimed = await exporter.sendSpool(deadline, { legacy: true });
		// Retriable failures back off 1 s, then 2 s (the exporter's own schedule); two more rounds.
		for (let round = 1; round <= 2 && exporter.status.waitingBatches > 0 && !exporter.status.blocked && Date.now() < deadline; round++) {
			await new Promise(resolve => setTimeout(resolve, 1000 * round));
			await exporter.flush(deadline);
		}
	} finally {
		stop();
		if (tty) process.stdout.write("\n");
		exporter.exitSync(); // give back what was not sent, for the next run or host
	}
	const status = exporter.status;
	const left = (await exporter.spool.stats({ mine: true })).files;
	const busy = exporter.spool.heldByOthers();
	const unsent = status.waitingBatches ? `${status.waitingBatches} batch(es) not sent` : "none unsent";
	out(
		`flush: sent ${status.sentSpans} observation(s) from ${claimed} batch file(s); failed: ${status.droppedSpans} rejected, ${unsent}; left ${left - busy} batch file(s)` +
			(busy ? ` (+${busy} held by running agents, which send them)` : "") +
			(status.blocked || status.lastError ? ` — ${status.blocked ?? status.lastError}` : ""),
	);
	reportOthers();
	return left - busy === 0 ? 0 : 1;
}

// Run as a command (`bun langfuse.ts …`), not loaded by a host. Not `import.meta.main`: a file that says
// `import.meta` makes jiti (pi) load it as a native ES module, which doubles its warm import time.
if (typeof Bun !== "undefined" && typeof __filename === "string" && Bun.main === __filename) {
	runCli(process.argv.slice(2)).then(
		code => process.exit(code),
		error => {
			process.stderr.write(`${LOG_PREFIX} ${errorText(error)}\n`);
			process.exit(1);
		},
	);
}

// ════════════════════════════════════════════════════════════════════════════════════════════════
// Appendix Secret redactor — the patterns of SECRETS.md-style formats and the engine that finds them.
// ════════════════════════════════════════════════════════════════════════════════════════════════

// Secret redaction: every string that leaves memory goes through makeRedactor(...)(text).
//
// Speed: one regex scan finds candidates. It starts with a class of a few rare-ish "lead" characters
// (- _ : = A B J S W Y 9), and lookbehinds check the few characters around each one (sk-, ghp_, a key
// ending in "token" before ":", AKIA, Bearer, …eyJ …); both engines scan such a class far faster than
// an alternation of words or a case-insensitive keyword search. A small sticky regex or a few char
// checks then confirm each candidate where it stands. Env literals join the scan the same way. Secrets
// become edits (start, end, marker), applied once at the end; overlapping edits merge. No edit: the
// very same string comes back, so callers can skip work.
//
// Output: a secret becomes "[REDACTED]" whatever its kind and the context stays
// (`Authorization: Bearer [REDACTED]`, `OPENAI_API_KEY=[REDACTED]`, `postgres://app:[REDACTED]@db`);
// a private key block becomes "[REDACTED PRIVATE KEY]"; a base64 image or blob becomes
// "[image image/png 12.3 KB base64 omitted]". No rule matches a marker, so redaction is idempotent.
// It never throws; if it ever failed it would return a marker, never the unredacted input.

function makeRedactor(options: {
	env?: Record<string, string | undefined>;
	extraPatterns?: string[];
	onInvalidPattern?: (pattern: string, error: string) => void;
}): Redactor {
	const MARK = "[REDACTED]";

	// ── Rules, as sticky regexes run at a candidate position ──
	const VENDOR = new RegExp(
		[
			String.raw`[sp]k-lf-[0-9a-fA-F][0-9a-fA-F-]{15,}`, // Langfuse
			String.raw`sk-[\w-]{20,}`, // OpenAI (sk-, -proj-, -svcacct-, -admin-), Anthropic (sk-ant-…), DeepSeek, OpenRouter…
			String.raw`[sr]k_(?:live|test|prod)_[A-Za-z0-9]{10,}`, // Stripe
			String.raw`whsec_[A-Za-z0-9+/=]{20,}`, // Stripe webhook secret
			String.raw`gh[pousr]_[A-Za-z0-9]{20,}`, // GitHub
			String.raw`github_pat_\w{30,}`, // GitHub fine-grained
			String.raw`gl(?:pat|dt|ptt|rt|cbt|imt|oas|soat|ffct|ft)-[\w-]{16,}`, // GitLab
			String.raw`xox[abeoprs]-[A-Za-z0-9-]{10,}`, // Slack
			String.raw`xapp-[A-Za-z0-9-]{10,}`, // Slack app-level
			String.raw`GOCSPX-[\w-]{20,}`, // Google OAuth client secret
			String.raw`hf_[A-Za-z0-9]{30,}`, // Hugging Face
			String.raw`npm_[A-Za-z0-9]{30,}`, // npm
			String.raw`pypi-Ag[\w-]{50,}`, // PyPI
			String.raw`gsk_[A-Za-z0-9]{30,}`, // Groq
			String.raw`xai-[A-Za-z0-9]{30,}`, // xAI
			String.raw`pplx-[A-Za-z0-9]{30,}`, // Perplexity
			String.raw`tvly-[\w-]{20,}`, // Tavily
			String.raw`r8_[A-Za-z0-9]{30,}`, // Replicate
			String.raw`lsv2_(?:pt|sk)_\w{30,}`, // LangSmith
			String.raw`dop_v1_[a-f0-9]{40,}`, // DigitalOcean
			String.raw`shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32,}`, // Shopify
		].join("|"),
		"y",
	);
	const JWT = /ey[\w-]{10,}\.ey[\w-]{10,}(?:\.[\w-]+){0,3}/y;
	const GOOGLE_OAUTH = /ya29\.[\w.-]{20,}/y;
	const SENDGRID = /SG\.[\w-]{16,}\.[\w-]{16,}/y;
	const AWS_ID = /(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16,}/y;
	const GOOGLE_KEY = /AIza[\w-]{30,}/y;
	const AWS_SECRET = /(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{40}(?![A-Za-z0-9+/=])/g;
	const AWS_CLI = /(?:secret_access_key|session_token)[ \t]+([A-Za-z0-9+/=]{16,})(?![\w+/=])/y;
	const BEARER = /(?:earer|EARER)[ \t]+([\w.~+/-]{8,}=*)/y;
	const BASIC = /asic[ \t]+([A-Za-z0-9+/]{6,}={0,2})(?![\w+/=])/y;
	const PEM_HEAD = /-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----/y;
	const PEM_TAIL = /-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----/y;
	const PEM_BODY = /(?:[A-Za-z0-9+/=:,. \t\r\n-]|\\[rn])*/y;
	const FLAG = /--?[a-z0-9-]{0,40}?(?:password|passwd|passphrase|secret|token|api-?key|access-key|private-key)(?:=|[ \t]+)/y;
	// `-u user:pass`, but not `-u scheme://user:pass@host` (URL_AUTH keeps scheme and host there)
	const CURL_USER = /(?:-u|--user)(?:=|[ \t]*)(["']?)([^\s:"'@/]*):(?!\/\/)([^\s"']+)/y;
	const URL_AUTH = /\/\/([^\s:@/?#"'<>\\]*):([^\s/?#"'<>\\]+)@/y;
	const URL_TOKEN_USER = /\/\/([\w-]{20,})@/y;
	const WEBHOOK = /\/\/(?:hooks\.slack\.com\/(?:services|workflows|triggers)\/|(?:canary\.|ptb\.)?discord(?:app)?\.com\/api\/webhooks\/\d+\/)([\w/+-]{8,})/y;
	const DATA_URL = /:([\w.+-]+\/[\w.+-]+)(?:;[\w.+-]+=[^;,\s"']*)*;base64,([A-Za-z0-9+/=\r\n]*)/y;
	const BASE64_BLOB = /[A-Za-z0-9+/]{64,}={0,2}/y;
	const NETRC = /machine[ \t]+[^\s\\]+(?:(?:\s|\\[nrt])+(?:login|account|port)[ \t]+[^\s\\]+)*(?:\s|\\[nrt])+password[ \t]+([^\s"'`\\]+)/y;
	const SQL_PASSWORD = /(?:PASSWORD|IDENTIFIED BY)[ \t]+'([^'\n]+)'/y;
	const SCHEME = /(?:Bearer|Basic|Token|Bot|Digest|Negotiate|NTLM|ApiKey|Api-Key|JWT|DPoP|SSWS|GoogleLogin|AWS4-HMAC-SHA256)[ \t]+/iy;
	const CREDENTIAL = /(?:[^\s"'`,\\]|\\(?![nrt"'\\]))+/y;

	// ── The scan: one regex whose first character is one of a few "lead" characters; a lookbehind or
	//    a short literal after it confirms a candidate. Engines find such a class quickly, whereas an
	//    alternation of many words or a case-insensitive keyword search costs several times more.
	//    JSON text escapes newlines as \n, so "\nsk-…" still counts as the start of a token.
	const AFTER_BREAK = String.raw`(?:(?<![A-Za-z0-9])|(?<=\\[nrt]))`;
	const FLAG_WORDS = "(?:password|passwd|passphrase|secret|token|api-?key|access-key|private-key)";
	// how the key words end: passwORD, passSWD / PWD, passphrASE, pASS, credentIALS / credentIAL, imaGES, secRET, toKEN, authoriZATION, KEY, AUTH, dATA
	const KEY_TAIL = String.raw`(?:[Oo][Rr][Dd]|[SsPp][Ww][Dd]|[Aa][Ss][EeSs]|[Ii][Aa][Ll][Ss]?|[Gg][Ee][Ss]|[Rr][Ee][Tt]|[Kk][Ee][NnYy]|[Zz][Aa][Tt][Ii][Oo][Nn]|[Uu][Tt][Hh]|[Aa][Tt][Aa])`;
	const LEADS = "-_:=ABJSWY9";
	const RULES = [
		// ":" "=": after a key ending like a key word (password=, "token": …), or "://" before user:pass@ or a webhook host
		String.raw`(?<=[:=])(?:(?<=${KEY_TAIL}(?:\\?["'\`])?[ \t]*[:=])|(?<=:)(?=\/\/(?:[^\s/?#@"'<>\\]{0,256}@|hooks\.slack\.com\/|(?:canary\.|ptb\.)?discord(?:app)?\.com\/)))`,
		// "-": vendor prefixes (sk-, pk-lf-, glpat-, xoxb-…), --password x / -token x, curl -u / --user, -----BEGIN
		String.raw`(?<=-)(?:(?<=[kptsbaeorXiy]-)(?<=${AFTER_BREAK}(?:sk|pk|gl(?:pat|dt|ptt|rt|cbt|imt|oas|soat|ffct|ft)|xox[abeoprs]|xapp|GOCSPX|pypi|xai|pplx|tvly)-)|-(?=[a-z])[a-z0-9-]{0,40}?${FLAG_WORDS}[= \t]|(?=[psta])${FLAG_WORDS}[= \t]|u[ \t]|-user[= \t]|----BEGIN)`,
		// ya29. (Google OAuth access token), found by its 9
		String.raw`(?<=ya29)\.`,
		// "_": vendor prefixes (ghp_, github_pat_, sk_live_, hf_, npm_…), aws configure set aws_secret_access_key x
		String.raw`(?<=_)(?:(?<=${AFTER_BREAK}(?:gh[pousr]|github|[sr]k|whsec|hf|npm|gsk|r8|lsv2|dop|shp(?:at|ss|ca|pa))_)|(?:secret_access_key|session_token)[ \t])`,
		// capitals: AKIA… / AIza…, Bearer / Basic credentials, …eyJ (JWT), SG. (SendGrid), SQL PASSWORD '…' / IDENTIFIED BY '…'
		String.raw`(?<=[ABJSWY])(?:(?<=A)(?:KIA|SIA|BIA|CCA|Iza|3T[A-Z0-9])|(?<=B)(?:earer|EARER|asic)[ \t]|(?<=eyJ)|(?<=S)G\.|(?<=PASSW)(?=ORD[ \t]+')|(?<=IDENTIFIED BY)(?=[ \t]+'))`,
	].join("|");
	/** The scan regex; each env literal joins it as a lookaround at one of its characters, with a capture group of its own. */
	const buildFind = (envLiterals: string[], envLeads: number[]) => {
		const escape = (part: string) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
		const env = envLiterals.map((literal, i) => `(?<=${escape(literal.slice(0, envLeads[i] + 1))})(?=${escape(literal.slice(envLeads[i] + 1))})()`);
		const leads = [...new Set(LEADS + envLiterals.map((literal, i) => literal[envLeads[i]]).join(""))].map(c => escape(c).replace("-", "\\-")).join("");
		return new RegExp(`[${leads}](?:${[...env, RULES].join("|")})`, "g");
	};
	let FIND = buildFind([], []);
	let findLiterals: string[] = [];
	let findLeads: number[] = [];

	// ── Judging key = value ──
	const PLACEHOLDER = /^(?:<[^>]*>?|\{\{.*|\$\{.*|\$\(.*|\$[A-Za-z_]\w*|%[A-Za-z_]\w*%?|#\{.*|\*+|[xX]{3,}|your[-_ ].*|(?:redacted|hidden|masked|none|null|nil|undefined|true|false|required|optional|string|password|secret|token|placeholder|example|dummy)|.*(?:\.\.\.|…).*)$/i;
	const UPPER_WORD = /^[A-Z_]+$/;
	const CALL = /^(?:(?:await|new|typeof|void)[ \t]|[A-Za-z_$][\w$]*[([])/;
	const CHAIN = /^[A-Za-z_$][\w$]*(?:(?:\?\.|\.|::|->)[A-Za-z_$][\w$]*)+(?![\w$])/;
	const IDENT = /^[A-Za-z_$][\w$]*$/;
	const PATH = /^(?:(?:~|\.{1,2})\/[\w.@/-]*|\/(?:home|root|usr|etc|var|tmp|opt|run|Users|mnt|srv|app|proc|dev|workspaces?|data|private|Volumes|nix|snap|bin|sbin|lib)(?:\/[\w.@-]*)*)$/;
	const IMAGE_MAGIC: Array<[string, string]> = [
		["iVBORw0KGgo", "image/png"],
		["/9j/", "image/jpeg"],
		["R0lGOD", "image/gif"],
		["UklGR", "image/webp"],
		["PHN2Zy", "image/svg+xml"],
	];

	const isAlnum = (c: number) => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
	const isKeyChar = (c: number) => isAlnum(c) || c === 95 || c === 46 || c === 45; // _ . -
	/** A name a programmer wrote (accessToken, Uint8Array, raw_password), not a random credential. */
	const wordy = (name: string) => {
		if (name.length <= 2) return true;
		let digits = 0;
		for (const chunk of name.match(/[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+[a-z]?/g) ?? []) {
			if (chunk.charCodeAt(0) < 58) {
				if (++digits > 1 || /[a-z]$/.test(chunk)) return false; // passw0rd, hunter2hunter2
			} else if (chunk.length < 2) return false; // xK9q…
		}
		return true;
	};
	const looksLikeCode = (value: string, trimmed: boolean) => {
		if (CALL.test(value)) return true;
		const chain = CHAIN.exec(value);
		if (chain) return chain[0].split(/\?\.|\.|::|->/).every(wordy);
		return IDENT.test(value) && wordy(value) && (trimmed || /[a-z][A-Z]|_/.test(value));
	};
	/** Looks like a random credential rather than a word, a path or an identifier. */
	const looksRandom = (value: string) =>
		value.length >= 16 && /^[A-Za-z0-9+/=_-]+$/.test(value) && /\d/.test(value) && /[A-Za-z]/.test(value) && !/^[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}$/i.test(value);
	const isPlaceholder = (value: string) => PLACEHOLDER.test(value) || UPPER_WORD.test(value) || /^[$<[{]/.test(value);
	const sizeOf = (base64Chars: number, padding: number): string => {
		const bytes = Math.max(0, Math.floor((base64Chars * 3) / 4) - padding);
		if (bytes < 1024) return `${bytes} B`;
		if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
		return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
	};
	/** Does text[start, end) end with `word` (lower case, letters only), ignoring case? */
	const endsWith = (text: string, start: number, end: number, word: string) => {
		if (end - start < word.length) return false;
		for (let i = 0, at = end - word.length; i < word.length; i++, at++) if ((text.charCodeAt(at) | 32) !== word.charCodeAt(i)) return false;
		return true;
	};
	/** What the key text[start, end) names: 0 nothing, 1 a secret, 2 authorization, 3 some key or credentials, 4 data. */
	const keyKind = (text: string, start: number, end: number): number => {
		const last = text.charCodeAt(end - 1) | 32;
		switch (last) {
			case 100: // d
				return endsWith(text, start, end, "password") || endsWith(text, start, end, "passwd") || endsWith(text, start, end, "pwd") ? 1 : 0;
			case 101: // e
				return endsWith(text, start, end, "passphrase") ? 1 : 0;
			case 115: // s
				if (endsWith(text, start, end, "pass")) return end - start === 4 || "_.-".includes(text[end - 5]) ? 1 : 0;
				if (endsWith(text, start, end, "credentials")) return 3;
				return endsWith(text, start, end, "images") ? 4 : 0;
			case 116: // t
				return endsWith(text, start, end, "secret") ? 1 : 0;
			case 110: // n
				if (endsWith(text, start, end, "token")) return 1;
				return endsWith(text, start, end, "authorization") ? 2 : 0;
			case 121: {
				// y: api_key, apiKey, x-api-key, access_key, private-key, secret_key → a secret; any other key → maybe
				if (!endsWith(text, start, end, "key")) return 0;
				let e = end - 3;
				if (e > start && (text[e - 1] === "_" || text[e - 1] === "-")) e--;
				return endsWith(text, start, e, "api") || endsWith(text, start, e, "access") || endsWith(text, start, e, "private") || endsWith(text, start, e, "secret") ? 1 : 3;
			}
			case 104: // h
				return endsWith(text, start, end, "auth") ? 1 : 0;
			case 108: // l
				return endsWith(text, start, end, "credential") ? 3 : 0;
			case 97: // a
				return endsWith(text, start, end, "data") ? 4 : 0;
		}
		return 0;
	};

	// Edits found in the current text: [start, end) → marker, the first `count` entries. Reused between calls.
	const starts: number[] = [];
	const ends: number[] = [];
	const marks: string[] = [];
	let count = 0;
	let awsIds: number[] = [];
	const add = (start: number, end: number, mark: string): number => {
		if (end > start) {
			starts[count] = start;
			ends[count] = end;
			marks[count++] = mark;
		}
		return end;
	};

	/** The value starting at `from`, quoted or bare; redacted if it is a secret. Returns the value's end once redacted, else 0. */
	function judgeValue(text: string, from: number, strong: boolean, envStyle: boolean, flag: boolean, inQuery: boolean): number {
		const n = Math.min(text.length, from + (strong ? 8192 : 256));
		let at = from;
		let code = text.charCodeAt(at);
		if ((code === 98 || code === 114 || code === 117 || code === 102) && (text[at + 1] === '"' || text[at + 1] === "'")) code = text.charCodeAt(++at); // b"…" r'…'
		let quote = 0; // the closing quote's char code; negative for \" inside JSON text
		if (code === 34 || code === 39 || code === 96) quote = code;
		else if (code === 92 && (text[at + 1] === '"' || text[at + 1] === "'")) quote = -text.charCodeAt(++at);
		let start = at;
		let end = at;
		let value: string;
		let trimmed = false;
		if (quote) {
			start = end = at + 1;
			for (;;) {
				if (end >= n) return 0;
				const c = text.charCodeAt(end);
				if (c === 10 || c === 13) return 0;
				if (quote > 0 ? c === quote : c === -quote && text.charCodeAt(end - 1) === 92) break;
				if (c === 92) {
					if (quote > 0) end++;
					else if (text[end + 1] === "n" || text[end + 1] === "r") return 0;
				}
				end++;
			}
			if (quote < 0) end--;
			if (end - start < (strong ? 6 : 16)) return 0;
			value = text.slice(start, end);
			if (!strong) return looksRandom(value) ? add(start, end, MARK) : 0;
			if (/^\s|\s$|\$\{|\{\{|#\{|%\(|\[REDACTED|\[image |\[data |^-----BEGIN/.test(value)) return 0;
		} else {
			while (end < n) {
				const c = text.charCodeAt(end);
				if (c <= 32 || c === 34 || c === 39 || c === 96 || (inQuery && c === 38)) break;
				if (c === 92 && /[nrt"'\\]/.test(text[end + 1] ?? "")) break; // an escape in JSON text ends the value
				end++;
			}
			while (end > start && ",;:)]}".includes(text[end - 1])) {
				end--;
				trimmed = true;
			}
			if (end - start < (flag ? 1 : strong ? 6 : 16)) return 0;
			const first = text.charCodeAt(start);
			if (first === 91 || first === 36 || first === 60 || first === 123 || first === 42) return 0; // [REDACTED…] $VAR <placeholder> {{…}} ***
			value = text.slice(start, end);
			if (!strong) return looksRandom(value) ? add(start, end, MARK) : 0;
			if (value.includes("[REDACTED") || PATH.test(value)) return 0;
			if (flag) {
				if (value.startsWith("-") || /^\d{1,7}$/.test(value) || UPPER_WORD.test(value)) return 0;
			} else if (!envStyle) {
				if (looksLikeCode(value, trimmed)) return 0;
				if (/^[a-z]+$/.test(value) && /^[ \t]+[^\s#]/.test(text.slice(end, end + 3))) return 0; // prose: "invalid token: expected 3 parts"
			} else if (/^[$%]|^\{\{/.test(value)) return 0;
		}
		if (PLACEHOLDER.test(value) || UPPER_WORD.test(value)) return 0;
		return flag || value.length >= 8 || (value.length >= 6 && /[^A-Za-z]/.test(value) && /[A-Za-z]/.test(value)) ? add(start, end, MARK) : 0;
	}

	/** A vendor token whose prefix ends just before `p` ("-" or "_"); returns where scanning may go on. */
	function onVendor(text: string, p: number): number {
		let s = p;
		while (s > 0 && isAlnum(text.charCodeAt(s - 1)) && p - s < 8) s--;
		if (text.charCodeAt(s - 1) === 92) s++; // the "n" of a \n escape is no prefix
		VENDOR.lastIndex = s;
		const v = VENDOR.exec(text);
		if (!v) return p + 1;
		if (v[0].startsWith("sk-") && !v[0].startsWith("sk-lf-") && !(/\d/.test(v[0]) && /[A-Za-z0-9]{10}/.test(v[0].slice(3)))) return VENDOR.lastIndex; // sk-spinner-fading-circle
		add(s, VENDOR.lastIndex, MARK);
		return VENDOR.lastIndex;
	}

	function onDash(text: string, p: number): number {
		const next = text.charCodeAt(p + 1);
		if (next === 45 && text.startsWith("-----BEGIN", p)) {
			PEM_HEAD.lastIndex = p;
			const head = PEM_HEAD.exec(text);
			if (!head) return p + 1;
			const bodyFrom = p + head[0].length;
			const endAt = text.indexOf("-----END", bodyFrom);
			let stop = -1;
			if (endAt >= 0 && !/["'`]/.test(text.slice(bodyFrom, endAt))) {
				PEM_TAIL.lastIndex = endAt;
				if (PEM_TAIL.exec(text)) stop = PEM_TAIL.lastIndex;
			}
			if (stop < 0) {
				// no END line (cut off): drop the base64 body that follows
				PEM_BODY.lastIndex = bodyFrom;
				PEM_BODY.exec(text);
				stop = PEM_BODY.lastIndex;
				while (stop > bodyFrom && /[\s-]/.test(text[stop - 1])) stop--;
				if (stop - bodyFrom < 16) return p + 1; // only the marker line, e.g. a constant in code
			}
			add(p, stop, "[REDACTED PRIVATE KEY]");
			return stop;
		}
		if (next !== 45 && !(next >= 97 && next <= 122)) return onVendor(text, p);
		// a flag (--password x, --api-key=x, -token x) or curl -u / --user user:pass; else the end of a vendor prefix
		const before = p > 0 ? text.charCodeAt(p - 1) : 32;
		if (isAlnum(before) || before === 45 || before === 95) return onVendor(text, p);
		if ((next === 117 && /^-u[ \t=]/.test(text.slice(p, p + 3))) || text.startsWith("--user", p)) {
			CURL_USER.lastIndex = p;
			const c = CURL_USER.exec(text);
			if (c && !isPlaceholder(c[3])) add(CURL_USER.lastIndex - c[3].length, CURL_USER.lastIndex - (c[1] && c[3].endsWith(c[1]) ? 1 : 0), MARK);
			return p + 1;
		}
		FLAG.lastIndex = p;
		return Math.max(p + 1, FLAG.exec(text) ? judgeValue(text, FLAG.lastIndex, true, false, true, false) : 0);
	}

	/** Where an env literal joins the scan: its rarest character among the lead characters, or its first upper-case letter, digit or sign. */
	const envLead = (literal: string): number => {
		for (const c of "JYWBS9A_=:-") {
			const at = literal.indexOf(c);
			if (at >= 0) return at;
		}
		const at = literal.search(/[^a-z]/);
		return at >= 0 ? at : 0;
	};

	/** A token that starts at s (AKIA…, AIza…, eyJ…, SG.…), if nothing alphanumeric runs into it. */
	function onToken(text: string, s: number, re: RegExp): number {
		const prev = text.charCodeAt(s - 1);
		if (s > 0 && (isAlnum(prev) || prev === 95 || prev === 45) && !(text.charCodeAt(s - 2) === 92 && (prev === 110 || prev === 116 || prev === 114))) return s + 1;
		re.lastIndex = s;
		if (!re.exec(text)) return s + 1;
		if (re === AWS_ID) awsIds.push(s);
		add(s, re.lastIndex, MARK);
		return re.lastIndex;
	}

	function onUpper(text: string, p: number): number {
		switch (text.charCodeAt(p)) {
			case 65: // A
				return onToken(text, p, text.charCodeAt(p + 1) === 73 ? GOOGLE_KEY : AWS_ID);
			case 74: // J of eyJ
				return onToken(text, p - 2, JWT);
			case 83: // S of SG.
				return onToken(text, p, SENDGRID);
			case 66: {
				// Bearer <token> / Basic <base64 of user:pass>
				const basic = text.charCodeAt(p + 1) === 97;
				const re = basic ? BASIC : BEARER;
				re.lastIndex = p + 1;
				const b = re.exec(text);
				if (!b) return p + 1;
				let value = b[1];
				if (basic) {
					let decoded = "";
					try {
						decoded = atob(value);
					} catch {
						return p + 1;
					}
					if (!/^[\x20-\x7e]+:[\x20-\x7e]*$/.test(decoded)) return p + 1;
				} else {
					value = value.replace(/\.+$/, "");
					if (!/\d/.test(value) && value.length < 20) return p + 1; // "Bearer authentication"
				}
				const from = re.lastIndex - b[1].length;
				add(from, from + value.length, MARK);
				return from + value.length;
			}
			default: {
				// SQL: PASSWORD '…' / IDENTIFIED BY '…' (p is the W of PASSWORD or the Y of BY)
				SQL_PASSWORD.lastIndex = text.charCodeAt(p) === 87 ? p - 4 : p - 12;
				const m = SQL_PASSWORD.exec(text);
				if (m && !isPlaceholder(m[1])) add(SQL_PASSWORD.lastIndex - 1 - m[1].length, SQL_PASSWORD.lastIndex - 1, MARK);
				return p + 1;
			}
		}
	}

	function onGoogleOauth(text: string, p: number): number {
		if (p > 0 && isAlnum(text.charCodeAt(p - 1)) && text.charCodeAt(p - 2) !== 92) return p + 1;
		GOOGLE_OAUTH.lastIndex = p;
		if (!GOOGLE_OAUTH.exec(text)) return p + 1;
		let stop = GOOGLE_OAUTH.lastIndex;
		while (text.charCodeAt(stop - 1) === 46) stop--;
		add(p, stop, MARK);
		return stop;
	}

	/** .netrc: machine <host> [login <user>] password <secret> — only in text with line breaks, real or JSON-escaped (a file's content). */
	function onNetrc(text: string): void {
		for (let at = text.indexOf("machine"); at >= 0; at = text.indexOf("machine", at + 7)) {
			NETRC.lastIndex = at;
			const m = NETRC.exec(text);
			if (m && !isPlaceholder(m[1])) add(NETRC.lastIndex - m[1].length, NETRC.lastIndex, MARK);
		}
	}

	/** scheme://user:password@host, https://<token>@host, Slack / Discord webhooks; p is the ":". */
	function onUrl(text: string, p: number): void {
		// most URLs have no "@" in their authority part: settle that with a few char checks
		let at = -1;
		for (let i = p + 3; i < text.length && i < p + 512; i++) {
			const c = text.charCodeAt(i);
			if (c === 64) at = i;
			else if (c <= 32 || c === 47 || c === 63 || c === 35 || c === 34 || c === 39 || c === 60 || c === 62 || c === 92) break;
		}
		if (at < 0) {
			if (text.startsWith("hooks.slack.com/", p + 3) || /^(?:canary\.|ptb\.)?discord(?:app)?\.com\//.test(text.slice(p + 3, p + 30))) {
				WEBHOOK.lastIndex = p + 1;
				const w = WEBHOOK.exec(text);
				if (w) add(WEBHOOK.lastIndex - w[1].length, WEBHOOK.lastIndex, MARK);
			}
			return;
		}
		URL_AUTH.lastIndex = p + 1;
		const u = URL_AUTH.exec(text);
		if (u) {
			if (!isPlaceholder(u[2])) add(URL_AUTH.lastIndex - 1 - u[2].length, URL_AUTH.lastIndex - 1, MARK);
			return;
		}
		URL_TOKEN_USER.lastIndex = p + 1;
		const t = URL_TOKEN_USER.exec(text);
		if (t && looksRandom(t[1])) {
			add(p + 3, p + 3 + t[1].length, MARK);
			return;
		}
	}

	/** data:<type>;base64,… and base64 images under a "data" / "images" key; p is the ":". Returns where to go on. */
	function onData(text: string, p: number, bare: boolean): number {
		if (bare && text.charCodeAt(p + 1) !== 32) {
			DATA_URL.lastIndex = p;
			const d = DATA_URL.exec(text);
			if (d) {
				const body = d[2].replace(/\r?\n/g, "");
				const padding = body.endsWith("==") ? 2 : body.endsWith("=") ? 1 : 0;
				add(p - 4, DATA_URL.lastIndex, `[${/^image\//i.test(d[1]) ? "image" : "data"} ${d[1]} ${sizeOf(body.length, padding)} base64 omitted]`);
				return DATA_URL.lastIndex;
			}
		}
		let q = p + 1;
		while (q < text.length && q - p < 16 && /[\s[\\"'`]/.test(text[q])) q++;
		BASE64_BLOB.lastIndex = q;
		const b = BASE64_BLOB.exec(text);
		if (!b) return p + 1;
		const magic = IMAGE_MAGIC.find(([prefix]) => b[0].startsWith(prefix));
		if (!magic && b[0].length < 256) return p + 1;
		const padding = b[0].endsWith("==") ? 2 : b[0].endsWith("=") ? 1 : 0;
		const size = sizeOf(b[0].length, padding);
		add(q, BASE64_BLOB.lastIndex, magic ? `[image ${magic[1]} ${size} base64 omitted]` : `[data ${size} base64 omitted]`);
		return BASE64_BLOB.lastIndex;
	}

	/** key = value / key: value at the separator p (":" or "="). Returns where to go on. */
	function onSeparator(text: string, p: number, colon: boolean): number {
		const after = text.charCodeAt(p + 1);
		if (colon && after === 47 && text.charCodeAt(p + 2) === 47) {
			onUrl(text, p);
			return p + 1;
		}
		// the key: back over blanks and an optional (escaped) quote, then over key characters
		let k = p;
		let c = text.charCodeAt(k - 1);
		while (c === 32 || c === 9) c = text.charCodeAt(--k - 1);
		const spaced = k < p;
		if (c === 34 || c === 39 || c === 96) {
			c = text.charCodeAt(--k - 1);
			if (c === 92) c = text.charCodeAt(--k - 1);
		}
		if (!isAlnum(c)) return p + 1;
		const keyEnd = k;
		while (k > 0 && isKeyChar(text.charCodeAt(k - 1)) && keyEnd - k < 128) k--;
		if (text.charCodeAt(k - 1) === 92 && (text.charCodeAt(k) === 110 || text.charCodeAt(k) === 116 || text.charCodeAt(k) === 114)) k++; // "\nKEY=" in JSON text
		const kind = keyKind(text, k, keyEnd);
		if (kind === 0) return p + 1;
		if (kind === 4) return colon ? onData(text, p, keyEnd === p && endsWith(text, k, keyEnd, "data") && keyEnd - k === 4) : p + 1;
		if (colon ? after === 58 : after === 61 || "=!<>+-*/%&|^".includes(text[p - 1])) return p + 1; // ::, ==, !=, +=
		// the value: after =, :, :=, =>
		let v = p + (colon ? (after === 61 ? 2 : 1) : after === 62 ? 2 : 1);
		while (v < text.length && (text.charCodeAt(v) === 32 || text.charCodeAt(v) === 9)) v++;
		if (v >= text.length) return p + 1;
		if (kind === 2 || (endsWith(text, k, keyEnd, "auth") && SCHEME.test(text.slice(v, v + 24).replace(/^\\?["'`]/, "")))) {
			// Authorization: <scheme> <credentials> — keep the scheme, drop the credentials
			if (text.charCodeAt(v) === 92) v++;
			if (/["'`]/.test(text[v])) v++;
			SCHEME.lastIndex = v;
			if (SCHEME.exec(text)) v = SCHEME.lastIndex;
			CREDENTIAL.lastIndex = v;
			const cred = CREDENTIAL.exec(text);
			if (cred && cred[0].length >= 4 && !isPlaceholder(cred[0])) add(v, CREDENTIAL.lastIndex, MARK);
			return p + 1;
		}
		const key = text.slice(k, keyEnd);
		const envStyle = /^[A-Z][A-Z0-9_]*$/.test(key) && (colon || !spaced) && !/(?:const|let|var|val)\s+$/.test(text.slice(Math.max(0, k - 8), k));
		// in a query string (?token=abc&x=1) the value stops at "&"
		return Math.max(p + 1, judgeValue(text, v, kind === 1 || envStyle, envStyle, false, k > 0 && (text[k - 1] === "?" || text[k - 1] === "&")));
	}

	function scan(text: string, literals: string[]): string {
		count = 0;
		if (awsIds.length) awsIds = [];

		for (let m = (FIND.lastIndex = 0, FIND.exec(text)); m; m = FIND.exec(text)) {
			const p = m.index;
			let next = p + 1;
			for (let i = 1; i < m.length; i++) {
				if (m[i] === undefined) continue;
				// an env literal; the rules below look at this position too
				add(p - findLeads[i - 1], p - findLeads[i - 1] + findLiterals[i - 1].length, MARK);
			}
			switch (text.charCodeAt(p)) {
				case 58: // :
				case 61: // =
					next = onSeparator(text, p, text.charCodeAt(p) === 58);
					break;
				case 45: // -
					next = onDash(text, p);
					break;
				case 95: // _
					if (!text.startsWith("_secret_access_key", p) && !text.startsWith("_session_token", p)) next = onVendor(text, p);
					else {
						// aws configure set aws_secret_access_key X
						AWS_CLI.lastIndex = p + 1;
						const t = AWS_CLI.exec(text);
						if (t && (looksRandom(t[1]) || t[1].length >= 40)) add(AWS_CLI.lastIndex - t[1].length, AWS_CLI.lastIndex, MARK);
					}
					break;
				case 57: // 9 of ya29.
					next = onGoogleOauth(text, p - 3);
					break;
				case 65: // A
				case 66: // B
				case 74: // J
				case 83: // S
				case 87: // W
				case 89: // Y
					next = onUpper(text, p);
			}
			if (next > FIND.lastIndex) FIND.lastIndex = next;
		}

		if ((text.indexOf("\n") >= 0 || text.indexOf("\\") >= 0) && text.includes("machine")) onNetrc(text);
		// AWS secret access keys near a key id (within 1,000 chars): 40 chars of base64 with upper, lower and digit
		let awsDone = 0;
		for (const id of awsIds) {
			const from = Math.max(awsDone, id - 1000);
			const near = text.slice(from, (awsDone = id + 1000));
			AWS_SECRET.lastIndex = 0;
			for (let m = AWS_SECRET.exec(near); m; m = AWS_SECRET.exec(near)) if (/[A-Z]/.test(m[0]) && /[a-z]/.test(m[0]) && /\d/.test(m[0])) add(from + m.index, from + m.index + 40, MARK);
		}
		// literal values of secret environment variables
		for (const literal of literals) for (let at = text.indexOf(literal); at >= 0; at = text.indexOf(literal, at + literal.length)) add(at, at + literal.length, MARK);
		// user patterns
		for (const re of extras) {
			re.lastIndex = 0;
			for (let m = re.exec(text); m; m = re.exec(text)) {
				if (m[0].length === 0) re.lastIndex++;
				else if (!m[0].includes("REDACTED")) add(m.index, m.index + m[0].length, MARK);
			}
		}

		if (!count) return text;
		// apply by start, outer edit first; overlapping edits merge (a key or image marker wins)
		const order = Array.from({ length: count }, (_, i) => i).sort((a, b) => starts[a] - starts[b] || ends[b] - ends[a]);
		let out = "";
		let pos = 0;
		let curStart = starts[order[0]];
		let curEnd = ends[order[0]];
		let curMark = marks[order[0]];
		for (let i = 1; i < order.length; i++) {
			const j = order[i];
			if (starts[j] < curEnd) {
				if (ends[j] > curEnd) curEnd = ends[j];
				if (curMark === MARK) curMark = marks[j];
				continue;
			}
			out += text.slice(pos, curStart) + curMark;
			pos = curEnd;
			curStart = starts[j];
			curEnd = ends[j];
			curMark = marks[j];
		}
		return out + text.slice(pos, curStart) + curMark + text.slice(curEnd);
	}

	// ── User patterns (LANGFUSE_REDACT_REGEX); a leading (?i) turns on case-insensitivity ──
	const extras: RegExp[] = [];
	for (const pattern of options.extraPatterns ?? []) {
		if (!pattern) continue;
		try {
			const insensitive = pattern.startsWith("(?i)");
			extras.push(new RegExp(insensitive ? pattern.slice(4) : pattern, insensitive ? "gi" : "g"));
		} catch (error) {
			try {
				options.onInvalidPattern?.(pattern, error instanceof Error ? error.message : String(error));
			} catch {
				// a throwing reporter must not break construction
			}
		}
	}

	// ── Values of secret-looking environment variables, replaced wherever they appear ──
	const SECRET_NAME = /(?:^|_)(?:KEY|TOKEN|SECRET|PAT|PASS|PASSWD|PWD|PASSPHRASE)(?:_|$)|PASSWORD|CREDENTIAL|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|^AUTH(?!OR)|KEY$/i;
	const PLAIN_NAME = /_(?:URL|URI|HOST|HOSTNAME|DOMAIN|ENDPOINT|ISSUER|AUDIENCE|REGION|MODE|TYPE|METHOD|PROVIDER|ENABLED|DISABLED|USER|USERNAME|NAME|PATH|FILE|DIR|SOCK|HEADER|PREFIX|TTL|EXPIRY|TIMEOUT|VERSION|FORMAT|SCOPES?|LENGTH|SIZE|COUNT|LIMIT)$/i;
	const PLAIN_VALUE = /^(?:true|false|yes|no|on|off|null|none|undefined|enabled|disabled|[-+]?[\d.,:_ ]+|(?:~|\.{1,2})?(?:\/[\w.@-]+)+\/?)$/i;
	const literals: string[] = [];
	for (const [name, raw] of Object.entries(options.env ?? {})) {
		if (typeof raw !== "string" || !SECRET_NAME.test(name) || PLAIN_NAME.test(name)) continue;
		const value = raw.trim();
		if (value.length < 8 || value.length > 4096 || PLAIN_VALUE.test(value) || value.includes("[REDACTED")) continue;
		const forms = [value, JSON.stringify(value).slice(1, -1)];
		try {
			forms.push(encodeURIComponent(value));
		} catch {
			// a lone surrogate has no URL form
		}
		for (const form of forms) {
			// a value the rules already catch on their own (a vendor token) needs no literal search
			if (!literals.includes(form) && scan(` ${form} `, []) !== ` ${MARK} `) literals.push(form);
		}
	}
	literals.sort((a, b) => b.length - a.length);
	// up to 8 literals ride along in the scan (an indexOf each costs as much as the scan on a short string)
	findLiterals = literals.splice(0, Math.min(8, literals.length));
	findLeads = findLiterals.map(envLead);
	if (findLiterals.length) FIND = buildFind(findLiterals, findLeads);

	return function redact(text: string): string {
		if (typeof text !== "string" || text.length < (extras.length ? 1 : 6)) return text;
		try {
			return scan(text, literals);
		} catch {
			return "[REDACTED: redactor failed]";
		}
	};
}
