import request from 'supertest';
import { createService, type ServiceContext } from '@clipline/shared';
import { buildProducer } from '../src/producer.js';
import { createTestEnvironment, type TestEnvironment } from '../../../tests/helpers/services.js';

let env: TestEnvironment;
let service: ServiceContext;
let producer: ReturnType<typeof buildProducer>;

beforeAll(async () => {
  env = await createTestEnvironment();
  service = createService('producer', env.config);
  producer = buildProducer(service);
  // Connected before the tests, so the shutdown after them never races a connection in progress.
  await new Promise<void>((resolve) => (producer.redis.status === 'ready' ? resolve() : producer.redis.once('ready', () => resolve())));
});

afterAll(async () => {
  await service.shutdown.shutdown('tests done');
  await env.cleanup();
});

describe('API docs page', () => {
  it('serves a page that loads Swagger UI from this origin and no inline script', async () => {
    const res = await request(producer.app).get('/docs');
    expect(res.status).toBe(200);
    expect(res.type).toBe('text/html');
    expect(res.headers['content-security-policy']).toContain("script-src 'self'");
    const scripts = [...res.text.matchAll(/<script([^>]*)>([^<]*)<\/script>/g)];
    expect(scripts.map((match) => /src="([^"]+)"/.exec(match[1] ?? '')?.[1])).toEqual(['/docs/assets/swagger-ui-bundle.js', '/docs/init.js']);
    expect(scripts.every((match) => match[2] === '')).toBe(true);
    expect(res.text).toContain('/openapi.json');
    expect(res.text).not.toMatch(/https?:\/\//);
  });

  it('serves the viewer assets from node_modules and an init script pointing at /openapi.json', async () => {
    const bundle = await request(producer.app).get('/docs/assets/swagger-ui-bundle.js');
    expect(bundle.status).toBe(200);
    expect(bundle.type).toMatch(/javascript/);
    expect(bundle.text).toContain('SwaggerUIBundle');
    const css = await request(producer.app).get('/docs/assets/swagger-ui.css');
    expect(css.status).toBe(200);
    expect(css.type).toBe('text/css');
    const init = await request(producer.app).get('/docs/init.js');
    expect(init.status).toBe(200);
    expect(init.text).toContain('SwaggerUIBundle(');
    expect(init.text).toContain("getAttribute('data-spec-url')");
    const spec = await request(producer.app).get('/openapi.json');
    expect(spec.status).toBe(200);
    expect(spec.body.openapi).toMatch(/^3\.1/);
  });

  it('answers 404 for a file swagger-ui-dist does not have', async () => {
    const res = await request(producer.app).get('/docs/assets/missing.js');
    expect(res.status).toBe(404);
  });
});
