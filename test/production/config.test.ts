/**
 * What `temporal-server` derives before it starts anything: the PostgreSQL target from the URL,
 * the ports (free, distinct, below 32768, never Temporal's defaults), and the server's
 * configuration written from image-sync's template.
 */
import { describe, expect, it } from 'vitest';
import { parsePostgresUrl, PERSISTENCE_SCHEMA, VISIBILITY_SCHEMA } from '../../src/temporal/postgres-database';
import { pickServerPorts, serverConfigYaml } from '../../src/temporal/server-config';
import YAML from 'yaml';

describe('temporal-server configuration', () => {
  it('reads user, password, host, port and database from the URL', () => {
    expect(parsePostgresUrl('postgresql://svc:p%40ss@db.internal:6432/temporal')).toEqual({
      host: 'db.internal',
      port: 6432,
      user: 'svc',
      password: 'p@ss',
      database: 'temporal',
    });
    expect(parsePostgresUrl('postgres://127.0.0.1/t')).toMatchObject({ port: 5432, user: 'postgres', password: '' });
    expect(() => parsePostgresUrl('http://127.0.0.1:5432/t')).toThrow(/must start with postgres:\/\//);
    expect(() => parsePostgresUrl('postgres://127.0.0.1:5432/')).toThrow(/must name a database/);
    expect(() => parsePostgresUrl('not a url')).toThrow(/must be a URL/);
  });

  it('picks nine distinct free ports below 32768, none of them a Temporal default', async () => {
    const ports = await pickServerPorts('127.0.0.1', 0);
    const all = Object.values(ports);
    expect(new Set(all).size).toBe(9);
    for (const p of all) {
      expect(p).toBeGreaterThanOrEqual(1024);
      expect(p).toBeLessThan(32768);
      expect([7233, 7234, 7235, 7239, 7243, 6933, 6934, 6935, 6939, 7936, 8000]).not.toContain(p);
    }
    const given = await pickServerPorts('127.0.0.1', 41234);
    expect(given.frontend).toBe(41234);
    expect(Object.values(given).filter((p) => p === 41234)).toHaveLength(1);
  });

  it('writes every port, both schemas and the database into the server configuration', async () => {
    const ports = await pickServerPorts('127.0.0.1', 0);
    const target = parsePostgresUrl('postgres://svc:secret@127.0.0.1:5432/temporal_x');
    const config = YAML.parse(
      serverConfigYaml({
        target,
        ports,
        ip: '127.0.0.1',
        historyShards: 8,
        logLevel: 'warn',
        dynamicConfigFile: '/abs/dynamic.yaml',
        maxConns: 12,
      }),
    ) as {
      persistence: { numHistoryShards: number; datastores: Record<string, { sql: Record<string, unknown> }> };
      services: Record<string, { rpc: Record<string, unknown> }>;
      global: Record<string, unknown>;
      clusterMetadata: { clusterInformation: { active: { rpcAddress: string } } };
      dynamicConfigClient: { filepath: string };
    };
    expect(config.persistence.numHistoryShards).toBe(8);
    const stores = Object.values(config.persistence.datastores).map((d) => d.sql);
    expect(stores.map((s) => (s.connectAttributes as Record<string, string>).search_path)).toEqual([
      PERSISTENCE_SCHEMA,
      VISIBILITY_SCHEMA,
    ]);
    for (const s of stores) {
      expect(s).toMatchObject({
        pluginName: 'postgres12',
        databaseName: 'temporal_x',
        user: 'svc',
        password: 'secret',
      });
      expect(s.connectAddr).toBe('127.0.0.1:5432');
    }
    expect(config.services.frontend!.rpc).toMatchObject({
      grpcPort: ports.frontend,
      httpPort: ports.frontendHttp,
      membershipPort: ports.frontendMembership,
    });
    expect(config.services.history!.rpc).toMatchObject({
      grpcPort: ports.history,
      membershipPort: ports.historyMembership,
    });
    expect(config.services.matching!.rpc).toMatchObject({
      grpcPort: ports.matching,
      membershipPort: ports.matchingMembership,
    });
    expect(config.services.worker!.rpc).toMatchObject({
      grpcPort: ports.worker,
      membershipPort: ports.workerMembership,
    });
    // No metrics or pprof listener on a fixed port.
    expect(config.global.metrics).toBeUndefined();
    expect(config.global.pprof).toBeUndefined();
    expect(config.clusterMetadata.clusterInformation.active.rpcAddress).toBe(`127.0.0.1:${ports.frontend}`);
    expect(config.dynamicConfigClient.filepath).toBe('/abs/dynamic.yaml');
  });
});
