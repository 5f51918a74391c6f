// The peer of langfuse.ts in the session benchmark: the same pi tracing written with the official
// Langfuse JS SDK v5, set up as Langfuse's docs show (NodeSDK + LangfuseSpanProcessor from
// @langfuse/otel, observations from @langfuse/tracing, trace attributes via propagateAttributes).
// Same tree as langfuse.ts: per prompt an agent observation (the trace), a span per turn, a
// generation per LLM call (input = the request's messages, output, model, parameters, usage, cost,
// completion start), a tool observation per tool call. Credentials and host come from
// LANGFUSE_PUBLIC_KEY / LANGFUSE_SECRET_KEY / LANGFUSE_BASE_URL; every setting is the SDK's default.
import { createRequire } from "node:module";
import * as path from "node:path";
import { pathToFileURL } from "node:url";

/** Imports a package as resolved from `base` (a folder whose node_modules has the SDK). */
async function importFrom(base, name) {
	const require = createRequire(path.join(base, "noop.js"));
	let resolved;
	try {
		resolved = require.resolve(name);
	} catch {
		throw new Error(`${name} is not installed under ${base} — run npm install (it is a devDependency)`);
	}
	// The ESM build when there is one (what `import` in an app gets).
	const esm = resolved.replace(/index\.cjs$/, "index.mjs").replace(/\/build\/src\/index\.js$/, "/build/esm/index.js");
	try {
		return await import(pathToFileURL(esm).href);
	} catch {
		return await import(pathToFileURL(resolved).href);
	}
}

export async function setupSdk(base) {
	const [{ NodeSDK }, { LangfuseSpanProcessor }, tracing] = await Promise.all([
		importFrom(base, "@opentelemetry/sdk-node"),
		importFrom(base, "@langfuse/otel"),
		importFrom(base, "@langfuse/tracing"),
	]);
	const { startObservation, propagateAttributes } = tracing;
	const langfuseSpanProcessor = new LangfuseSpanProcessor();
	const sdk = new NodeSDK({ spanProcessors: [langfuseSpanProcessor] });
	sdk.start();

	const textOf = content =>
		typeof content === "string"
			? content
			: Array.isArray(content)
				? content
						.filter(part => part?.type === "text")
						.map(part => part.text)
						.join("\n")
				: "";
	const simplify = content => (Array.isArray(content) && content.every(part => part?.type === "text") ? textOf(content) : content);

	function attach(pi) {
		/** One session's state; pi's session id names the Langfuse session. */
		let session;
		const stateFor = ctx => {
			const sessionId = ctx.sessionManager.getSessionId();
			if (!session || session.id !== sessionId) {
				session = { id: sessionId, attributes: { sessionId, userId: process.env.USER || "bench", tags: ["pi"], metadata: { host: "pi", cwd: String(ctx.cwd) } } };
			}
			return session;
		};
		/** Every observation is created inside propagateAttributes, as v5 documents for trace attributes. */
		const observe = (s, name, attributes, options, parent) =>
			propagateAttributes(s.attributes, () => (parent ? parent.startObservation(name, attributes, options) : startObservation(name, attributes, options)));
		const openTurn = (s, index) => {
			if (!s.turn) s.turn = observe(s, `turn ${index}`, { metadata: { turnIndex: index } }, { asType: "span" }, s.root);
			return s.turn;
		};

		pi.on("input", (event, ctx) => {
			stateFor(ctx).pendingPrompt = event.text;
		});
		pi.on("before_agent_start", (event, ctx) => {
			stateFor(ctx).pendingPrompt = event.prompt;
		});
		pi.on("agent_start", (_event, ctx) => {
			const s = stateFor(ctx);
			const input = s.pendingPrompt;
			s.attributes = { ...s.attributes, traceName: String(input ?? "prompt").slice(0, 80) };
			s.root = observe(s, s.attributes.traceName, { input, metadata: { model: ctx.model?.id, provider: ctx.model?.provider } }, { asType: "agent" });
			s.turnIndex = 0;
		});
		pi.on("turn_start", (event, ctx) => {
			const s = stateFor(ctx);
			s.turnIndex = event.turnIndex;
			openTurn(s, event.turnIndex);
		});
		pi.on("before_provider_request", (event, ctx) => {
			const s = stateFor(ctx);
			const { messages, model, tools, stream, stream_options, ...rest } = event.payload;
			// pi announces turn n ≥ 1's request before its turn_start: the turn opens here then.
			const turn = openTurn(s, s.turn ? s.turnIndex : s.turnIndex + 1);
			s.generation = observe(
				s,
				model,
				{
					input: [...messages],
					model,
					modelParameters: rest,
					metadata: { provider: ctx.model?.provider, api: ctx.model?.api, tools: tools?.map(tool => tool.function?.name) },
				},
				{ asType: "generation" },
				turn,
			);
			s.firstToken = false;
		});
		pi.on("message_update", (_event, ctx) => {
			const s = stateFor(ctx);
			if (s.generation && !s.firstToken) {
				s.firstToken = true;
				s.generation.update({ completionStartTime: new Date() });
			}
		});
		pi.on("message_end", (event, ctx) => {
			const message = event.message;
			if (message?.role !== "assistant") return;
			const s = stateFor(ctx);
			const usage = message.usage ?? {};
			const cost = usage.cost ?? {};
			s.generation
				?.update({
					model: message.model,
					output: simplify(message.content),
					usageDetails: { input: usage.input, output: usage.output, cache_read_input_tokens: usage.cacheRead, cache_creation_input_tokens: usage.cacheWrite, total: usage.totalTokens },
					costDetails: { input: cost.input, output: cost.output, cache_read_input_tokens: cost.cacheRead, cache_creation_input_tokens: cost.cacheWrite, total: cost.total },
					metadata: { stopReason: message.stopReason, responseId: message.responseId },
				})
				.end();
			s.generation = undefined;
			s.lastOutput = textOf(message.content);
		});
		pi.on("tool_execution_start", (event, ctx) => {
			const s = stateFor(ctx);
			s.tools ??= new Map();
			s.tools.set(event.toolCallId, observe(s, event.toolName, { input: event.args, metadata: { toolCallId: event.toolCallId } }, { asType: "tool" }, s.turn ?? s.root));
		});
		pi.on("tool_execution_end", (event, ctx) => {
			const s = stateFor(ctx);
			const tool = s.tools?.get(event.toolCallId);
			if (!tool) return;
			s.tools.delete(event.toolCallId);
			const output = event.result?.content ?? event.result;
			tool.update({ output: simplify(output), level: event.isError ? "ERROR" : undefined, statusMessage: event.isError ? textOf(output).slice(0, 300) : undefined }).end();
		});
		pi.on("turn_end", (event, ctx) => {
			const s = stateFor(ctx);
			const usage = ctx.getContextUsage?.();
			s.turn?.update({ output: { stopReason: event.message?.stopReason }, metadata: { toolResults: event.toolResults?.length, contextTokens: usage?.tokens } }).end();
			s.turn = undefined;
		});
		pi.on("agent_end", (_event, ctx) => {
			const s = stateFor(ctx);
			s.root?.update({ output: s.lastOutput }).end();
			s.root = undefined;
		});
		// The host awaits this; an app ends the SDK this way before it exits (spans are flushed).
		pi.on("session_shutdown", () => sdk.shutdown());
	}
	return { attach };
}
