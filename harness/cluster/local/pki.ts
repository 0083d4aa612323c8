import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { stringify } from "yaml";
import { run } from "../../core/exec.ts";
import type { Logger } from "../../core/logger.ts";

/**
 * Certificates for a local cluster, made with the openssl CLI (Node's crypto cannot issue X.509).
 * One CA signs everything; each component gets its own client identity so RBAC works as upstream
 * (system:kube-controller-manager, system:kube-scheduler, system:node:<name>, ...). EC P-256 keys: fast to make.
 */
export interface CertPair {
  cert: string;
  key: string;
}

export interface ClientIdentity {
  /** File stem under pki/. */
  id: string;
  commonName: string;
  organization?: string;
}

export interface Pki {
  dir: string;
  ca: CertPair;
  apiserver: CertPair;
  serviceAccountKey: string;
  serviceAccountPub: string;
}

export async function createPki(
  dir: string,
  clusterName: string,
  apiserverSans: { ips: string[]; dns: string[] },
  logger: Logger,
): Promise<Pki> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const ca = { cert: join(dir, "ca.crt"), key: join(dir, "ca.key") };
  await openssl(
    [
      "req",
      "-x509",
      ...newKey(ca.key),
      "-out",
      ca.cert,
      "-days",
      "3650",
      "-subj",
      `/CN=tph-${clusterName}-ca`,
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
    ],
    logger,
  );
  const san = [
    ...apiserverSans.ips.map((ip) => `IP:${ip}`),
    ...apiserverSans.dns.map((d) => `DNS:${d}`),
  ].join(",");
  const apiserver = await issue(dir, ca, { id: "apiserver", commonName: "kube-apiserver" }, logger, san);
  const serviceAccountKey = join(dir, "sa.key");
  const serviceAccountPub = join(dir, "sa.pub");
  await openssl(
    ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", serviceAccountKey],
    logger,
  );
  await openssl(["pkey", "-in", serviceAccountKey, "-pubout", "-out", serviceAccountPub], logger);
  return { dir, ca, apiserver, serviceAccountKey, serviceAccountPub };
}

/** Issues a certificate signed by the cluster CA: a client identity, or a server one when `san` is given. */
export async function issue(
  dir: string,
  ca: CertPair,
  who: ClientIdentity,
  logger: Logger,
  san?: string,
): Promise<CertPair> {
  const pair = { cert: join(dir, `${who.id}.crt`), key: join(dir, `${who.id}.key`) };
  const subject = `${who.organization ? `/O=${who.organization}` : ""}/CN=${who.commonName}`;
  await openssl(
    [
      "req",
      "-x509",
      ...newKey(pair.key),
      "-out",
      pair.cert,
      "-days",
      "365",
      "-subj",
      subject,
      "-CA",
      ca.cert,
      "-CAkey",
      ca.key,
      "-addext",
      "basicConstraints=critical,CA:FALSE",
      "-addext",
      "keyUsage=critical,digitalSignature,keyEncipherment",
      "-addext",
      `extendedKeyUsage=${san ? "serverAuth,clientAuth" : "clientAuth"}`,
      ...(san ? ["-addext", `subjectAltName=${san}`] : []),
    ],
    logger,
  );
  return pair;
}

/** A self-contained kubeconfig (certificates embedded), usable by kubectl and @kubernetes/client-node. */
export async function writeKubeconfig(
  path: string,
  options: { clusterName: string; server: string; caCert: string; client: CertPair; user: string },
): Promise<void> {
  const b64 = async (file: string) => (await readFile(file)).toString("base64");
  const context = `tph-${options.clusterName}`;
  const doc = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [
      {
        name: context,
        cluster: { server: options.server, "certificate-authority-data": await b64(options.caCert) },
      },
    ],
    users: [
      {
        name: options.user,
        user: {
          "client-certificate-data": await b64(options.client.cert),
          "client-key-data": await b64(options.client.key),
        },
      },
    ],
    contexts: [{ name: context, context: { cluster: context, user: options.user } }],
    "current-context": context,
  };
  await writeFile(path, stringify(doc), { mode: 0o600 });
}

function newKey(keyPath: string): string[] {
  return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", keyPath];
}

async function openssl(args: string[], logger: Logger): Promise<void> {
  await run(["openssl", ...args], { logger });
}
