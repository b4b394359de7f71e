-- The W3C trace context a message was sent in (traceparent and tracestate, as JSON), so that the
-- worker that runs it, in another process and later, continues the producer's trace. NULL when
-- the message was sent without tracing.

ALTER TABLE messages ADD COLUMN trace_context text;
