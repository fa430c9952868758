/**
 * Which traces a process exports, read from the standard OpenTelemetry variables. This is the one
 * place outside the config schema that reads the environment: tracing has to start before the
 * config module (and the Redis and database clients it pulls in) is loaded, or they would not be
 * instrumented.
 */
export type OtlpProtocol = 'http/json' | 'http/protobuf';

export interface TracingSettings {
  /** Where spans go: the collector's traces URL (`…/v1/traces`). */
  tracesUrl: string;
  protocol: OtlpProtocol;
  serviceName: string;
  /** Extra request headers for the collector (`OTEL_EXPORTER_OTLP_HEADERS`). */
  headers: Record<string, string>;
}

const PROTOCOLS: readonly OtlpProtocol[] = ['http/json', 'http/protobuf'];

/**
 * The tracing settings, or undefined when no endpoint is set (tracing off). Throws, naming the
 * variable, on a value this process cannot honour (e.g. the `grpc` protocol).
 */
export function tracingSettings(env: NodeJS.ProcessEnv, defaultServiceName: string): TracingSettings | undefined {
  const tracesEndpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim();
  const endpoint = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  if (!tracesEndpoint && !endpoint) return undefined;
  const protocol = (env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf').trim();
  if (!PROTOCOLS.includes(protocol as OtlpProtocol)) {
    throw new Error(`OTEL_EXPORTER_OTLP_PROTOCOL must be one of ${PROTOCOLS.join(', ')} (got "${protocol}")`);
  }
  // The per-signal variable is the full URL; the general one is a base the signal's path is added to.
  const tracesUrl = tracesEndpoint || `${endpoint!.replace(/\/+$/, '')}/v1/traces`;
  if (!isHttpUrl(tracesUrl)) throw new Error(`${tracesEndpoint ? 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' : 'OTEL_EXPORTER_OTLP_ENDPOINT'} must be an http(s) URL`);
  return {
    tracesUrl,
    protocol: protocol as OtlpProtocol,
    serviceName: env.OTEL_SERVICE_NAME?.trim() || defaultServiceName,
    headers: parseHeaders(env.OTEL_EXPORTER_OTLP_TRACES_HEADERS ?? env.OTEL_EXPORTER_OTLP_HEADERS),
  };
}

function isHttpUrl(text: string): boolean {
  try {
    return ['http:', 'https:'].includes(new URL(text).protocol);
  } catch {
    return false;
  }
}

/** `key=value,key2=value2`, values URL-encoded as the specification says. */
function parseHeaders(raw: string | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const pair of (raw ?? '').split(',')) {
    const at = pair.indexOf('=');
    if (at <= 0) continue;
    try {
      headers[pair.slice(0, at).trim()] = decodeURIComponent(pair.slice(at + 1).trim());
    } catch {
      throw new Error('OTEL_EXPORTER_OTLP_HEADERS must be key=value pairs with URL-encoded values');
    }
  }
  return headers;
}
