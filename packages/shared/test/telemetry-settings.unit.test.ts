/** The OTLP settings a process takes from the standard OpenTelemetry variables. */
import { tracingSettings } from '../src/telemetry/settings.js';

describe('tracingSettings', () => {
  it('is off without an endpoint, or with an empty one', () => {
    expect(tracingSettings({}, 'clipline-producer')).toBeUndefined();
    expect(tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: ' ' }, 'clipline-producer')).toBeUndefined();
  });

  it('adds the traces path to the base endpoint; protobuf unless json is asked for; the process name unless OTEL_SERVICE_NAME', () => {
    expect(tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' }, 'clipline-worker-io')).toEqual({
      tracesUrl: 'http://collector:4318/v1/traces',
      protocol: 'http/protobuf',
      serviceName: 'clipline-worker-io',
      headers: {},
    });
    expect(
      tracingSettings(
        {
          OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
          OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
          OTEL_SERVICE_NAME: 'api-eu',
          OTEL_EXPORTER_OTLP_HEADERS: 'x-api-key=s%3Dcret, tenant = a',
        },
        'clipline-producer',
      ),
    ).toEqual({ tracesUrl: 'http://collector:4318/v1/traces', protocol: 'http/json', serviceName: 'api-eu', headers: { 'x-api-key': 's=cret', tenant: 'a' } });
  });

  it('takes the per-signal endpoint and protocol as they are', () => {
    const settings = tracingSettings(
      {
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://otlp.example/custom/traces',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
      },
      'x',
    );
    expect(settings).toMatchObject({ tracesUrl: 'https://otlp.example/custom/traces', protocol: 'http/json' });
  });

  it('refuses, naming the variable, what it cannot send or reach', () => {
    expect(() => tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_HEADERS: 'key=%E0%A4%A' }, 'x')).toThrow(
      /OTEL_EXPORTER_OTLP_HEADERS/,
    );
    expect(() => tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4317', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }, 'x')).toThrow(
      /OTEL_EXPORTER_OTLP_PROTOCOL/,
    );
    expect(() => tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }, 'x')).toThrow(/OTEL_EXPORTER_OTLP_ENDPOINT must be an http\(s\) URL/);
  });
});
