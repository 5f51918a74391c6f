// Reading what a receiver got, as Langfuse would: attribute values, JSON attributes, latest versions.
import langfuse, { type Internals } from "../../langfuse.ts";
import type { ReceivedSpan } from "./receiver.ts";

const { encodeRecord, itemBuffer } = (langfuse as unknown as { internals: Internals }).internals;
/** A record as the OTLP span the exporter sends: its encoded bytes, read as text. */
export const encodeSpan = (record: Parameters<typeof encodeRecord>[0]): string => itemBuffer(encodeRecord(record, "otel")![0]!).toString("utf8");

export const attr = (span: ReceivedSpan, key: string) => span.attributes[key];
export const type = (span: ReceivedSpan) => attr(span, "langfuse.observation.type");
/** A JSON attribute (usage, cost, model parameters, metadata), `{}` when absent. */
export const json = (span: ReceivedSpan, key: string) => JSON.parse(String(attr(span, key) ?? "{}"));
/** Input/output as Langfuse's SDKs send them: a string as it is, anything else as JSON. */
export const io = (span: ReceivedSpan, key: string): any => {
	const raw = attr(span, key);
	if (typeof raw !== "string") return raw;
	try {
		return JSON.parse(raw);
	} catch {
		return raw;
	}
};
/** Metadata travels as one JSON object per observation and per trace. */
export const meta = (span: ReceivedSpan, key: string) => json(span, "langfuse.observation.metadata")?.[key];
export const traceMeta = (span: ReceivedSpan, key: string) => json(span, "langfuse.trace.metadata")?.[key];
/** Spans by id, last version wins (a root is sent when the prompt starts, on rename, and at its end). */
export const latest = (spans: ReceivedSpan[]) => [...new Map(spans.map(span => [span.spanId, span])).values()];
export const sum = (values: number[]) => values.reduce((total, value) => total + value, 0);
export const ms = (nanos: string) => Number(BigInt(nanos) / 1_000_000n);
