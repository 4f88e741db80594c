/**
 * PostgreSQL access for the images MVP (metaextract) API server.
 *
 * A single pg Pool is shared by every route handler and by drizzle. Upload
 * requests hold a client for the whole extraction (trial check, credit
 * deduction, metadata insert, analytics events), so the pool size is the
 * number of uploads that can be processed at the same time.
 */
import { Pool, type PoolClient } from "pg";
import { drizzle } from "drizzle-orm/node-postgres";
import * as schema from "@shared/schema";
import { logger } from "./logger";

const DATABASE_URL = process.env.DATABASE_URL;

if (!DATABASE_URL) {
  throw new Error(
    "DATABASE_URL must be set. Did you forget to provision a database?",
  );
}

const isProduction = process.env.NODE_ENV === "production";

// Pool defaults. Clients idle for 30 s are released; a request that cannot
// get a client within 2 s fails with "timeout exceeded when trying to
// connect" (the upload route answers 503).
const DEFAULT_POOL_CONFIG = {
  max: 10,
  idleTimeoutMillis: 30000,
  connectionTimeoutMillis: 2000,
};

export const pool = new Pool({
  connectionString: DATABASE_URL,
  ...DEFAULT_POOL_CONFIG,
  application_name: "images-mvp-api",
  ssl: isProduction ? { rejectUnauthorized: false } : undefined,
});

pool.on("error", (err) => {
  // An idle client lost its connection (server restart, network blip).
  logger.error({ err }, "pool error: idle client failed");
});

export const db = drizzle(pool, { schema });

/**
 * Run `fn` inside a transaction on a dedicated client (used by the credit
 * system so that the deduction and the usage record commit together).
 */
export async function withTransaction<T>(
  fn: (client: PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    const result = await fn(client);
    await client.query("COMMIT");
    return result;
  } catch (err) {
    await client.query("ROLLBACK");
    throw err;
  } finally {
    client.release();
  }
}

export async function checkDatabaseHealth(): Promise<boolean> {
  try {
    await pool.query("SELECT 1");
    return true;
  } catch (err) {
    logger.error({ err }, "database health check failed");
    return false;
  }
}

export async function closePool(): Promise<void> {
  await pool.end();
}
