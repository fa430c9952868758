import { createRequire } from 'node:module';
import path from 'node:path';
import express, { type Router } from 'express';

/** The installed swagger-ui-dist folder: its bundle and stylesheet are served from there, never a CDN. */
const swaggerUiFolder = path.dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));

/**
 * Everything the page runs comes from this origin, and no script is inline: the page loads the
 * bundle, then `init.js`, which points the viewer at `/openapi.json`.
 */
const contentSecurityPolicy = [
  "default-src 'self'",
  "script-src 'self'",
  // Swagger UI sets style attributes from its React components.
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');

const page = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>clipline API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
</head>
<body>
<div id="api-docs" data-spec-url="/openapi.json"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
`;

const initScript = `'use strict';
(function () {
  var root = document.getElementById('api-docs');
  window.apiDocs = SwaggerUIBundle({
    url: root.getAttribute('data-spec-url'),
    domNode: root,
    deepLinking: true,
    tryItOutEnabled: false,
    // The document is validated in the test suite; the viewer must not send it to a remote validator.
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
  });
})();
`;

/** `GET /docs`: the OpenAPI document rendered by Swagger UI, served from node_modules. */
export function apiDocsRoutes(): Router {
  const router = express.Router();
  router.get(['/docs', '/docs/'], (_req, res) => {
    res.setHeader('content-security-policy', contentSecurityPolicy);
    res.setHeader('x-content-type-options', 'nosniff');
    res.type('html').send(page);
  });
  router.get('/docs/init.js', (_req, res) => {
    res.setHeader('x-content-type-options', 'nosniff');
    res.type('text/javascript').send(initScript);
  });
  router.use('/docs/assets', express.static(swaggerUiFolder, { index: false, maxAge: '1h', fallthrough: true }));
  return router;
}
