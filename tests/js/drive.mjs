// Drives the published openmemory-js client (unchanged) against a running server and prints
// one JSON object with every result, for tests/openmemory/test_js_client.py to check.
//
//   node tests/js/drive.mjs <base-url> [api-key]
//
// openmemory-js 0.3.0 ships CommonJS as its Node entry point, so in an ES module the default
// import is the whole `exports` object; the class is the named export (also `.default` of a
// require()). The pages' `import OpenMemory from 'openmemory-js'` works through bundlers only.
import OpenMemoryDefault, { OpenMemory } from 'openmemory-js';

const [baseUrl, apiKey] = process.argv.slice(2);
if (!baseUrl) {
  console.error('usage: node drive.mjs <base-url> [api-key]');
  process.exit(2);
}

const om = new OpenMemory({ baseUrl, apiKey });
const ALICE = 'user_123';
const BOB = 'bob@example.com'; // sent unencoded in paths, as the client does

// The client throws `Error("OpenMemory API error: <status> <statusText>")` on any non-2xx.
async function failure(promise) {
  try {
    const value = await promise;
    return { ok: true, value };
  } catch (error) {
    return { ok: false, message: error.message };
  }
}

const out = { esm_default_import: typeof OpenMemoryDefault };

out.health = await om.health();
out.sectors = await om.getSectors();

// The User Management page's example, verbatim.
out.course = await om.add('User completed Python course', {
  tags: ['learning', 'achievement'],
  user_id: 'user_123',
});
out.dark_mode = await om.add('User prefers dark mode in applications', {
  tags: ['preferences', 'ui'],
  user_id: ALICE,
});
out.bob_light_mode = await om.add('User prefers light mode in applications', {
  tags: ['preferences'],
  user_id: BOB,
});
out.bob_rust = await om.add('User completed Rust course', { tags: ['learning'], user_id: BOB });
out.duplicate = await om.add('user completed  python course', { user_id: ALICE });

out.alice_query = await om.query('user preferences', { k: 10, filters: { user_id: ALICE } });
out.bob_query = await om.query('user preferences', { k: 10, filters: { user_id: BOB } });

out.alice_page_1 = await om.getUserMemories(ALICE, { limit: 1, offset: 0 });
out.alice_page_2 = await om.getUserMemories(ALICE, { limit: 1, offset: 1 });
out.alice_page_3 = await om.getUserMemories(ALICE, { limit: 1, offset: 2 });
out.bob_memories = await om.getUserMemories(BOB, { limit: 50 });

out.alice_summary = await om.getUserSummary(ALICE);
out.alice_regenerated = await om.regenerateUserSummary(ALICE);
out.bob_summary = await om.getUserSummary(BOB);

out.updated = await om.update(out.dark_mode.id, {
  content: 'User switched to light mode in the evening',
  tags: ['ui', 'evening'],
});
out.query_after_update = await om.query('User switched to light mode in the evening', {
  k: 1,
  filters: { user_id: ALICE },
});

out.reinforced = await om.reinforce(out.course.id, 0.3);

out.deleted = await om.delete(out.bob_rust.id);
out.bob_after_delete = await om.getUserMemories(BOB);

out.all = await om.getAll({ limit: 100 });
out.all_page = await om.getAll({ limit: 1, offset: 1 });
out.all_semantic = await om.getAll({ limit: 10, sector: 'semantic' });
out.all_episodic = await om.getAll({ sector: 'episodic' });

out.errors = {
  unknown_user_summary: await failure(om.getUserSummary('nobody')),
  deleted_memory_update: await failure(om.update(out.bob_rust.id, { content: 'x' })),
  empty_content: await failure(om.add('   ')),
};
if (apiKey) {
  out.errors.without_key = await failure(new OpenMemory({ baseUrl }).getSectors());
  out.errors.wrong_key = await failure(new OpenMemory({ baseUrl, apiKey: 'wrong' }).getSectors());
  out.errors.health_without_key = await failure(new OpenMemory({ baseUrl }).health());
}

process.stdout.write(JSON.stringify(out) + '\n');
