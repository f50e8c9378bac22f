// Renders this API's OpenAPI document with Swagger UI (served by the API itself under /docs/).
// A file of its own rather than an inline script, so that the page's Content-Security-Policy can
// admit scripts from this origin alone. The paths are relative, so the page also works behind a
// proxy that serves the API under a path prefix.
window.ui = SwaggerUIBundle({
  url: 'openapi.json',
  dom_id: '#swagger-ui',
  // Swagger UI would otherwise show a badge loaded from validator.swagger.io, another origin.
  validatorUrl: 'none',
});
