// Replays an event stream recorded from a real omp or pi (test/fixtures/*.jsonl, see its README)
// through langfuse.ts's omp/pi adapter, exactly as the host called it: one fake `pi` API object per
// factory call ("instance"), a ctx rebuilt from the recorded fields, handlers awaited in order.
import { readFileSync } from "node:fs";

export interface RecordedLine {
	t: number;
	instance?: number;
	type: string;
	event: any;
	ctx: {
		sessionId: string;
		sessionFile?: string;
		cwd?: string;
		hasUI?: boolean;
		mode?: string;
		model?: Record<string, unknown>;
		contextUsage?: unknown;
		header?: Record<string, unknown>;
	};
}

export function readRecording(file: string): RecordedLine[] {
	return readFileSync(file, "utf8")
		.split("\n")
		.filter(line => line.trim())
		.map(line => JSON.parse(line) as RecordedLine);
}

/** A ctx like the host's: getters for what the recording captured, UI calls that do nothing. */
export function contextOf(recorded: RecordedLine["ctx"]) {
	return {
		cwd: recorded.cwd,
		hasUI: false,
		mode: recorded.mode,
		model: recorded.model,
		sessionManager: {
			getSessionId: () => recorded.sessionId,
			getSessionFile: () => recorded.sessionFile,
			getHeader: () => recorded.header,
		},
		getContextUsage: () => recorded.contextUsage,
		ui: { setStatus: () => {}, notify: () => {} },
	};
}

/**
 * Feeds every line to the handlers langfuse.ts registered. `attach(pi)` is called once per recorded
 * factory call, like the host's own loader does.
 */
export async function replay(lines: RecordedLine[], attach: (pi: { on: (name: string, handler: any) => void }) => void): Promise<void> {
	const instances = new Map<number, Map<string, ((event: unknown, ctx: unknown) => unknown)[]>>();
	const handlersOf = (instance: number) => {
		let handlers = instances.get(instance);
		if (!handlers) {
			const created = new Map<string, ((event: unknown, ctx: unknown) => unknown)[]>();
			attach({ on: (name, handler) => created.set(name, [...(created.get(name) ?? []), handler]) });
			instances.set(instance, created);
			handlers = created;
		}
		return handlers;
	};
	for (const line of lines) {
		const handlers = handlersOf(line.instance ?? 1);
		if (line.type === "__factory__") continue;
		for (const handler of handlers.get(line.type) ?? []) await handler(line.event, contextOf(line.ctx));
	}
}
