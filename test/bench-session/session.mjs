// The synthetic pi session of the session benchmark (see ../bench-session.ts): a long print-mode
// session built from the recorded pi fixture (test/fixtures/pi-two-tools.jsonl: its system prompt,
// tool list, request settings, model, ctx and event shapes), replayed as the host would call the
// extension. Plain JS so that it runs unchanged under Node 20 (no type stripping) and Bun; only
// langfuse.ts itself goes through jiti, as pi loads it.
//
// Per prompt: input → before_agent_start → agent_start → message_start/end(user) → three LLM calls
// (turns 0..2; the first two end in one bash tool call each, the third in the final answer) →
// agent_end. That is 9 observations per prompt: the prompt, 3 turns, 3 generations, 2 tools.
// As in pi, the request of turn n ≥ 1 is announced (before_provider_request) before its turn_start,
// each request payload is freshly converted to the provider's chat format (new message objects over
// the same strings), and each call's messages array holds the whole conversation so far.
// The conversation grows until it passes pi's auto-compaction threshold for a 128k-token window
// (128000 − 16384 reserve tokens, at 4 characters a token), then it is cut to a summary plus the last
// ~20k tokens, as pi's compaction does (its events are not replayed: they would add a span).
// Tool outputs are log-like text of 1–6 KB; every 10th is 200 KB.
import { readFileSync } from "node:fs";

const CHARS_PER_TOKEN = 4;
const CONTEXT_WINDOW = 128_000;
const COMPACT_AT_TOKENS = CONTEXT_WINDOW - 16_384;
const KEEP_RECENT_TOKENS = 20_000;
const PRICES = { input: 3, output: 15, cacheRead: 0.3, cacheWrite: 3.75 };

const LOG_LINES = [
	"2026-11-23T09:15:01.123Z INFO  server listening on http://127.0.0.1:8080 (pid 4242)",
	"    at processTicksAndRejections (node:internal/process/task_queues:95:5)",
	'{"level":"debug","msg":"cache hit","key":"user:8f14e45f-ceea-467f-a0e6-2f4bd4f6a9a1","ms":3}',
	"src/components/Button.tsx(42,7): error TS2322: Type 'string' is not assignable to type 'number'.",
	"✓ renders the dashboard (12 ms)   commit 3f2c1a9e8b7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b",
	"export const handler = async (event: APIGatewayProxyEvent) => ({ statusCode: 200, body: JSON.stringify(event) });",
	"drwxr-xr-x  5 dev dev   4096 Nov 23 09:14 node_modules/.cache/typescript/5.9",
	"M  src/server/routes/session.ts | 42 ++++++++++++++++++-------",
];

/** ~`bytes` characters of log text; `salt` makes each output distinct (no two tool outputs are equal). */
function logText(bytes, salt) {
	const out = [];
	let size = 0;
	for (let i = salt % LOG_LINES.length; size < bytes; i++) {
		const line = i % 13 === 0 ? `[${salt}:${i}] step ${i} of job ${salt} finished in ${(i * 37) % 1000} ms` : LOG_LINES[i % LOG_LINES.length];
		out.push(line);
		size += line.length + 1;
	}
	return out.join("\n").slice(0, bytes);
}

function prose(words, salt) {
	const vocabulary = "the test fails because the handler returns a string where the schema expects a number so I will update the type and run the suite again then check the build output".split(" ");
	const out = [];
	for (let i = 0; i < words; i++) out.push(vocabulary[(i * 7 + salt) % vocabulary.length]);
	return out.join(" ");
}

/** What the recorded pi fixture provides: system prompt, tools, request settings, model and ctx. */
export function loadTemplate(fixtureFile) {
	const lines = readFileSync(fixtureFile, "utf8")
		.split("\n")
		.filter(line => line.trim())
		.map(line => JSON.parse(line));
	const find = type => lines.find(line => line.type === type);
	const request = find("before_provider_request").event.payload;
	const { messages, ...settings } = request;
	return {
		systemPrompt: find("before_agent_start").event.systemPrompt,
		settings, // model, stream, stream_options, store, max_completion_tokens, tools
		ctx: find("session_start").ctx,
		responseHeaders: find("after_provider_response").event.headers,
	};
}

/** A ctx like pi's: getters for what the recording captured, UI calls that do nothing. */
function makeContext(recorded, sessionId, usage) {
	return {
		cwd: recorded.cwd,
		hasUI: false,
		mode: recorded.mode,
		model: recorded.model,
		sessionManager: {
			getSessionId: () => sessionId,
			getSessionFile: () => recorded.sessionFile.replace(recorded.sessionId, sessionId),
			getHeader: () => ({ ...recorded.header, id: sessionId }),
		},
		getContextUsage: () => ({ tokens: usage.tokens, contextWindow: CONTEXT_WINDOW, percent: (usage.tokens / CONTEXT_WINDOW) * 100 }),
		ui: { setStatus: () => {}, notify: () => {} },
	};
}

const textLength = message => {
	let size = 0;
	for (const part of message.content) size += part.type === "text" ? part.text.length : JSON.stringify(part.arguments ?? "").length + 40;
	return size;
};

/** pi's openai-completions conversion: new provider-format objects, sharing the strings. */
function providerMessages(systemPrompt, history) {
	const out = [{ role: "system", content: systemPrompt }];
	for (const message of history) {
		if (message.role === "user") out.push({ role: "user", content: message.content.map(part => ({ type: "text", text: part.text })) });
		else if (message.role === "assistant") {
			const text = message.content.filter(part => part.type === "text").map(part => part.text).join("");
			const calls = message.content.filter(part => part.type === "toolCall");
			const converted = { role: "assistant", content: text };
			if (calls.length) converted.tool_calls = calls.map(call => ({ id: call.id, type: "function", function: { name: call.name, arguments: JSON.stringify(call.arguments) } }));
			out.push(converted);
		} else out.push({ role: "tool", content: message.content.map(part => part.text).join(""), tool_call_id: message.toolCallId });
	}
	return out;
}

function usageOf(inputTokens, outputTokens) {
	const cacheRead = Math.floor(inputTokens * 0.8);
	const input = inputTokens - cacheRead;
	const cost = {
		input: (input * PRICES.input) / 1e6,
		output: (outputTokens * PRICES.output) / 1e6,
		cacheRead: (cacheRead * PRICES.cacheRead) / 1e6,
		cacheWrite: 0,
	};
	cost.total = cost.input + cost.output + cost.cacheRead;
	return { input, output: outputTokens, cacheRead, cacheWrite: 0, totalTokens: input + outputTokens + cacheRead, cost };
}

/** Tool output sizes: 1–6 KB, every 10th tool call 200 KB. */
export const toolOutputBytes = toolIndex => (toolIndex % 10 === 9 ? 200 * 1024 : 1024 * (1 + ((toolIndex * 5) % 6)) + ((toolIndex * 131) % 512));

export const OBSERVATIONS_PER_PROMPT = 9;
export const LLM_CALLS_PER_PROMPT = 3;

/**
 * The session as a stream of `{type, event, ctx}` lines, generated lazily (a 10k-observation session
 * never sits in memory at once; what stays is the conversation, as in the host).
 */
export function* sessionEvents(template, { prompts, sessionId = "01a207ae-bench-7000-8000-000000000001" }) {
	const usage = { tokens: 0 };
	const ctx = makeContext(template.ctx, sessionId, usage);
	const model = template.ctx.model;
	let history = [];
	let historyChars = template.systemPrompt.length;
	let clock = 1_795_425_233_000;
	let callCounter = 0;
	let toolCounter = 0;
	const line = (type, event) => ({ type, event, ctx });

	yield line("session_start", { type: "session_start", reason: "startup" });
	for (let p = 0; p < prompts; p++) {
		const text = `Step ${p}: ${prose(40 + (p % 5) * 30, p)}`;
		yield line("input", { type: "input", text, source: "interactive" });
		yield line("before_agent_start", { type: "before_agent_start", prompt: text, systemPrompt: template.systemPrompt });
		yield line("agent_start", { type: "agent_start" });
		const user = { role: "user", content: [{ type: "text", text }], timestamp: (clock += 5) };
		const newMessages = [user];
		history.push(user);
		historyChars += text.length;
		yield line("message_start", { type: "message_start", message: user });
		yield line("message_end", { type: "message_end", message: user });

		for (let turn = 0; turn < LLM_CALLS_PER_PROMPT; turn++) {
			const payload = { ...template.settings, messages: providerMessages(template.systemPrompt, history) };
			const request = line("before_provider_request", { type: "before_provider_request", payload });
			const turnStart = line("turn_start", { type: "turn_start", turnIndex: turn, timestamp: (clock += 3) });
			yield turn === 0 ? turnStart : request;
			yield turn === 0 ? request : turnStart;
			const n = ++callCounter;
			yield line("after_provider_response", { type: "after_provider_response", status: 200, headers: { ...template.responseHeaders, "x-request-id": `req_mock_${n}` } });

			const final = turn === LLM_CALLS_PER_PROMPT - 1;
			const reply = final ? prose(120 + (p % 7) * 40, n) : `Running step ${turn + 1}: ${prose(30 + (n % 4) * 20, n)}`;
			const toolCall = final ? undefined : { type: "toolCall", id: `call_mock_${n}_0`, name: "bash", arguments: { command: `bun test --filter part${p}-${turn}` } };
			const tokensIn = Math.round(historyChars / CHARS_PER_TOKEN);
			usage.tokens = tokensIn;
			const empty = usageOf(0, 0);
			const partial = { role: "assistant", content: [], api: model.api, provider: model.provider, model: model.id, usage: empty, stopReason: "stop", timestamp: (clock += 20), responseId: `chatcmpl-mock-${n}` };
			yield line("message_start", { type: "message_start", message: partial });
			// Streamed: the host mutates one partial message; each update carries it and the delta.
			const deltas = 6;
			const step = Math.ceil(reply.length / deltas);
			partial.content = [{ type: "text", text: "" }];
			for (let d = 0; d < deltas; d++) {
				const delta = reply.slice(d * step, (d + 1) * step);
				partial.content[0] = { type: "text", text: partial.content[0].text + delta };
				yield line("message_update", { type: "message_update", message: partial, assistantMessageEvent: { type: d === 0 ? "text_start" : "text_delta", contentIndex: 0, delta, partial } });
			}
			if (toolCall) {
				partial.content.push(toolCall);
				yield line("message_update", { type: "message_update", message: partial, assistantMessageEvent: { type: "toolcall_end", contentIndex: 1, toolCall, partial } });
			}
			const assistant = {
				...partial,
				content: toolCall ? [{ type: "text", text: reply }, toolCall] : [{ type: "text", text: reply }],
				usage: usageOf(tokensIn, Math.round(reply.length / CHARS_PER_TOKEN) + (toolCall ? 20 : 0)),
				stopReason: toolCall ? "toolUse" : "stop",
			};
			yield line("message_end", { type: "message_end", message: assistant });
			history.push(assistant);
			newMessages.push(assistant);
			historyChars += textLength(assistant);

			const toolResults = [];
			if (toolCall) {
				const k = toolCounter++;
				const output = `$ ${toolCall.arguments.command}\n${logText(toolOutputBytes(k), k)}`;
				const failed = k % 7 === 3;
				const args = toolCall.arguments;
				const common = { toolCallId: toolCall.id, toolName: "bash" };
				yield line("tool_execution_start", { type: "tool_execution_start", ...common, args });
				yield line("tool_call", { type: "tool_call", toolName: "bash", toolCallId: toolCall.id, input: args });
				yield line("tool_execution_update", { type: "tool_execution_update", ...common, args, partialResult: { content: [] } });
				const content = [{ type: "text", text: output }];
				yield line("tool_result", { type: "tool_result", toolName: "bash", toolCallId: toolCall.id, input: args, content, isError: failed });
				yield line("tool_execution_end", { type: "tool_execution_end", ...common, result: { content }, isError: failed });
				const result = { role: "toolResult", ...common, content, isError: failed, timestamp: (clock += 50) };
				yield line("message_start", { type: "message_start", message: result });
				yield line("message_end", { type: "message_end", message: result });
				history.push(result);
				newMessages.push(result);
				toolResults.push(result);
				historyChars += output.length;
			}
			yield line("turn_end", { type: "turn_end", turnIndex: turn, message: assistant, toolResults });
		}
		yield line("agent_end", { type: "agent_end", messages: newMessages });

		// pi's auto-compaction: past the threshold, a summary replaces all but the recent messages.
		if (historyChars / CHARS_PER_TOKEN > COMPACT_AT_TOKENS) {
			let kept = 0;
			let from = history.length;
			while (from > 0 && kept + textLength(history[from - 1]) < KEEP_RECENT_TOKENS * CHARS_PER_TOKEN) kept += textLength(history[--from]);
			while (from < history.length && history[from].role === "toolResult") from++; // never start on a dangling tool result
			const summary = { role: "user", content: [{ type: "text", text: `The conversation history before this point was compacted into the following summary:\n<summary>\n${prose(400, p)}\n</summary>` }], timestamp: (clock += 1) };
			history = [summary, ...history.slice(from)];
			historyChars = template.systemPrompt.length + history.reduce((sum, message) => sum + textLength(message), 0);
		}
	}
	yield line("session_shutdown", { type: "session_shutdown", reason: "quit" });
}
