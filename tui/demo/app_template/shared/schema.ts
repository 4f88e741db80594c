/**
 * Database schema of the images MVP (metaextract), drizzle-orm style.
 * Kept in sync by hand with server/migrations/001..005.
 */
import {
  pgTable,
  text,
  integer,
  bigserial,
  boolean,
  jsonb,
  timestamp,
  index,
} from "drizzle-orm/pg-core";
import { createInsertSchema } from "drizzle-zod";
import { z } from "zod";

// 001_add_metadata_storage.sql
export const users = pgTable("users", {
  id: text("id").primaryKey(),
  email: text("email").notNull().unique(),
  tier: text("tier").notNull().default("free"), // free | professional | business
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
});

export const subscriptions = pgTable(
  "subscriptions",
  {
    id: text("id").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    tier: text("tier").notNull(),
    status: text("status").notNull().default("active"), // active | past_due | canceled
    currentPeriodEnd: timestamp("current_period_end", { withTimezone: true }),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => ({
    userIdIdx: index("idx_subscriptions_user_id").on(table.userId),
  }),
);

export const extractionAnalytics = pgTable("extraction_analytics", {
  id: bigserial("id", { mode: "number" }).primaryKey(),
  userId: text("user_id"), // NULL for anonymous trial uploads
  tier: text("tier").notNull(),
  fileType: text("file_type"),
  success: boolean("success").notNull(),
  processingMs: integer("processing_ms"),
  requestedAt: timestamp("requested_at", { withTimezone: true }).notNull().defaultNow(),
  metadata: jsonb("metadata"),
});

// 002_add_trial_usage_tracking.sql + 003_add_trial_usage_count.sql
export const trialUsages = pgTable("trial_usages", {
  id: bigserial("id", { mode: "number" }).primaryKey(),
  userId: text("user_id"),
  sessionId: text("session_id").notNull(),
  email: text("email"),
  tier: text("tier").notNull().default("free"),
  extractionCount: integer("extraction_count").notNull().default(0),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
});

// 004_add_ui_events.sql
export const imageMvpEvents = pgTable("image_mvp_events", {
  id: bigserial("id", { mode: "number" }).primaryKey(),
  userId: text("user_id"), // NULL for anonymous visitors
  sessionId: text("session_id"),
  eventType: text("event_type").notNull(),
  properties: jsonb("properties"),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
});

// 005_add_credit_system.sql
export const creditBalances = pgTable("credit_balances", {
  userId: text("user_id")
    .primaryKey()
    .references(() => users.id, { onDelete: "cascade" }),
  balance: integer("balance").notNull().default(0),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
});

export const FUNNEL_EVENTS = [
  "landing_viewed",
  "upload_selected",
  "analysis_started",
  "analysis_completed",
  "paywall_viewed",
  "purchase_completed",
] as const;
export type FunnelEvent = (typeof FUNNEL_EVENTS)[number];

export const insertUserSchema = createInsertSchema(users).pick({ id: true, email: true, tier: true });
export const insertEventSchema = createInsertSchema(imageMvpEvents, {
  eventType: z.enum(FUNNEL_EVENTS),
}).omit({ id: true, createdAt: true });

export type User = typeof users.$inferSelect;
export type InsertUser = z.infer<typeof insertUserSchema>;
export type Subscription = typeof subscriptions.$inferSelect;
export type ExtractionAnalytics = typeof extractionAnalytics.$inferSelect;
export type TrialUsage = typeof trialUsages.$inferSelect;
export type ImageMvpEvent = typeof imageMvpEvents.$inferSelect;
export type InsertImageMvpEvent = z.infer<typeof insertEventSchema>;
export type CreditBalance = typeof creditBalances.$inferSelect;
