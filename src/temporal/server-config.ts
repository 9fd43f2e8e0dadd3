/**
 * The Temporal server's ports and configuration files: free ports for every service, the
 * server's YAML on PostgreSQL and the Web UI server's YAML, each from image-sync's own template.
 */
import net from 'node:net';
import path from 'node:path';
import { PROJECT_ROOT } from './cli-binary';
import { PERSISTENCE_SCHEMA, VISIBILITY_SCHEMA, type PostgresTarget } from './postgres-database';

export const DYNAMIC_CONFIG_FILE = path.join(PROJECT_ROOT, 'temporal-config', 'dynamicconfig', 'development-sql.yaml');

export interface ServerPorts {
  frontend: number;
  frontendHttp: number;
  frontendMembership: number;
  history: number;
  historyMembership: number;
  matching: number;
  matchingMembership: number;
  worker: number;
  workerMembership: number;
}

/** True when the port can be bound on ip right now. */
export function portIsFree(ip: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, ip, () => srv.close(() => resolve(true)));
  });
}

/**
 * Free ports for every service. They are drawn below 32768: Temporal keeps membership ports in a
 * SMALLINT column, so the kernel's ephemeral ports (32768 and up) do not fit.
 */
export async function pickServerPorts(ip: string, frontend: number): Promise<ServerPorts> {
  const picked = new Set<number>([frontend]);
  const unique = async (): Promise<number> => {
    for (;;) {
      const p = 20_000 + Math.floor(Math.random() * 12_000);
      if (!picked.has(p) && (await portIsFree(ip, p))) {
        picked.add(p);
        return p;
      }
    }
  };
  return {
    frontend: frontend || (await unique()),
    frontendHttp: await unique(),
    frontendMembership: await unique(),
    history: await unique(),
    historyMembership: await unique(),
    matching: await unique(),
    matchingMembership: await unique(),
    worker: await unique(),
    workerMembership: await unique(),
  };
}

function yamlString(s: string): string {
  return JSON.stringify(s);
}

/** The server's configuration, written from this template (not copied from Temporal's samples). */
export function serverConfigYaml(args: {
  target: PostgresTarget;
  ports: ServerPorts;
  ip: string;
  historyShards: number;
  logLevel: string;
  dynamicConfigFile: string;
  maxConns: number;
}): string {
  const { target, ports, ip } = args;
  const store = (schema: string, maxConns: number) => `      sql:
        pluginName: postgres12
        databaseName: ${yamlString(target.database)}
        connectAddr: ${yamlString(`${target.host.includes(':') ? `[${target.host}]` : target.host}:${target.port}`)}
        connectProtocol: tcp
        user: ${yamlString(target.user)}
        password: ${yamlString(target.password)}
        connectAttributes:
          search_path: ${schema}
        maxConns: ${maxConns}
        maxIdleConns: ${maxConns}
        maxConnLifetime: 1h`;
  const service = (grpc: number, membership: number, extra = '') => `    rpc:
      grpcPort: ${grpc}
      membershipPort: ${membership}
      bindOnIP: ${yamlString(ip)}${extra}`;
  return `# Written by image-sync temporal-server at every start; edits are overwritten.
log:
  stdout: true
  level: ${args.logLevel}

persistence:
  defaultStore: image-sync-postgres
  visibilityStore: image-sync-postgres-visibility
  numHistoryShards: ${args.historyShards}
  datastores:
    image-sync-postgres:
${store(PERSISTENCE_SCHEMA, args.maxConns)}
    image-sync-postgres-visibility:
${store(VISIBILITY_SCHEMA, Math.max(2, Math.floor(args.maxConns / 4)))}

global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: ${yamlString(ip)}

services:
  frontend:
${service(ports.frontend, ports.frontendMembership, `\n      httpPort: ${ports.frontendHttp}`)}
  history:
${service(ports.history, ports.historyMembership)}
  matching:
${service(ports.matching, ports.matchingMembership)}
  worker:
${service(ports.worker, ports.workerMembership)}

clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: ${yamlString(`${ip}:${ports.frontend}`)}

dcRedirectionPolicy:
  policy: noop

dynamicConfigClient:
  filepath: ${yamlString(args.dynamicConfigFile)}
  pollInterval: 10s
`;
}

/** The Web UI server's configuration (its own template). */
export function uiConfigYaml(args: { ip: string; uiPort: number; frontend: string; namespace: string }): string {
  return `# Written by image-sync temporal-server at every start.
temporalGrpcAddress: ${yamlString(args.frontend)}
host: ${yamlString(args.ip)}
port: ${args.uiPort}
enableUi: true
defaultNamespace: ${yamlString(args.namespace)}
refreshInterval: 1m
notifyOnNewVersion: false
cors:
  allowOrigins: []
`;
}
