import type { Sql } from '../../internal/platform/database.ts';

export interface TableLock {
  /** Rolls the holding transaction back, letting the blocked statements go on. */
  release(): Promise<void>;
}

/**
 * Holds an ACCESS EXCLUSIVE lock on `table` in a transaction of its own, on a connection reserved
 * from `sql`, so every statement touching the table waits: PostgreSQL stuck, as a test needs it.
 */
export async function lockTable(sql: Sql, table: string): Promise<TableLock> {
  const holder = await sql.reserve();
  try {
    await holder`begin`;
    await holder`lock table ${holder(table)} in access exclusive mode`;
  } catch (err) {
    holder.release();
    throw err;
  }
  return {
    async release() {
      await holder`rollback`;
      holder.release();
    },
  };
}
