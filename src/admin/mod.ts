/**
 * Operations over HTTP: Prometheus metrics, health probes and the admin
 * JSON API, read from a broker's StatusPort. Imports the broker's public
 * surface and config only; the broker knows nothing of HTTP.
 */
export { type AdminServer, startAdminServer } from "./http.ts";
