/* test_kubeconfig.c — kubeconfig loading as kubectl does it, written to a
 * temporary folder: single files, $KUBECONFIG merging, --context, data vs
 * file fields, tokens, exec credential plugins (small shell scripts), the
 * errors a person sees, and the in-cluster service account. */
#include "../testutil.h"

#include "csl/clock.h"
#include "csl/kube.h"
#include "csl/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp[128];
static FILE *log_file;
static char err[1024];

/* base64 of "CA-PEM\n", "CERT-PEM\n", "KEY-PEM\n" */
#define CA_B64 "Q0EtUEVNCg=="
#define CERT_B64 "Q0VSVC1QRU0K"
#define KEY_B64 "S0VZLVBFTQo="

static const char *path_in(const char *rel)
{
    static char bufs[8][512];
    static int i;
    char *b = bufs[i++ % 8];
    snprintf(b, 512, "%s/%s", tmp, rel);
    return b;
}

static void mkdirs(const char *rel)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", tmp, rel);
    for (char *s = p + strlen(tmp) + 1; *s; s++) {
        if (*s == '/') {
            *s = 0;
            mkdir(p, 0700);
            *s = '/';
        }
    }
    mkdir(p, 0700);
}

static const char *put(const char *rel, const char *text, mode_t mode)
{
    const char *p = path_in(rel);
    FILE *f = fopen(p, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs(text, f);
    fclose(f);
    chmod(p, mode);
    return p;
}

static bool logged(const char *text)
{
    static char buf[65536];
    ssize_t n = pread(fileno(log_file), buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    return strstr(buf, text) != NULL;
}

static bool has(const char *text)
{
    if (!strstr(err, text)) {
        fprintf(stderr, "\nerror \"%s\" lacks \"%s\"\n", err, text);
        return false;
    }
    return true;
}

static const char single[] = "apiVersion: v1\n"
                             "kind: Config\n"
                             "clusters:\n"
                             "- name: local\n"
                             "  cluster:\n"
                             "    server: https://127.0.0.1:6443\n"
                             "    certificate-authority-data: " CA_B64 "\n"
                             "    tls-server-name: kubernetes\n"
                             "users:\n"
                             "- name: admin\n"
                             "  user:\n"
                             "    client-certificate-data: " CERT_B64 "\n"
                             "    client-key-data: " KEY_B64 "\n"
                             "contexts:\n"
                             "- name: main\n"
                             "  context: {cluster: local, user: admin, namespace: team-a}\n"
                             "- name: other\n"
                             "  context: {cluster: local, user: admin}\n"
                             "current-context: main\n";

static void test_single_file(void)
{
    const char *p = put("single.yaml", single, 0600);
    csl_kube_config c;
    CU_ASSERT_FATAL(csl_kubeconfig_load(p, NULL, &c, err, sizeof err) == 0);
    CU_ASSERT_STRING_EQUAL(c.server, "https://127.0.0.1:6443");
    CU_ASSERT_STRING_EQUAL(c.tls_server_name, "kubernetes");
    CU_ASSERT_EQUAL(c.ca_data_len, 7);
    CU_ASSERT_STRING_EQUAL(c.ca_data, "CA-PEM\n");
    CU_ASSERT_STRING_EQUAL(c.cert_data, "CERT-PEM\n");
    CU_ASSERT_EQUAL(c.cert_data_len, 9);
    CU_ASSERT_STRING_EQUAL(c.key_data, "KEY-PEM\n");
    CU_ASSERT_PTR_NULL(c.ca_file);
    CU_ASSERT_PTR_NULL(c.token);
    CU_ASSERT_PTR_NULL(c.exec.command);
    CU_ASSERT_FALSE(c.insecure);
    CU_ASSERT_STRING_EQUAL(c.namespace, "team-a");
    CU_ASSERT_STRING_EQUAL(c.context_name, "main");
    CU_ASSERT_STRING_EQUAL(c.source, p);

    /* a copy is deep and equal */
    csl_kube_config d;
    CU_ASSERT_FATAL(csl_kube_config_copy(&d, &c) == 0);
    CU_ASSERT_STRING_EQUAL(d.server, c.server);
    CU_ASSERT(d.ca_data != c.ca_data && memcmp(d.ca_data, c.ca_data, c.ca_data_len) == 0);
    csl_kube_config_free(&c);
    CU_ASSERT_PTR_NULL(c.server); /* freed and zeroed */
    CU_ASSERT_STRING_EQUAL(d.namespace, "team-a");
    csl_kube_config_free(&d);
    csl_kube_config_free(&d); /* twice is harmless */

    /* --context picks another; its namespace defaults */
    CU_ASSERT_FATAL(csl_kubeconfig_load(p, "other", &c, err, sizeof err) == 0);
    CU_ASSERT_STRING_EQUAL(c.context_name, "other");
    CU_ASSERT_STRING_EQUAL(c.namespace, "default");
    csl_kube_config_free(&c);
}

static void test_kubeconfig_merge(void)
{
    mkdirs("one");
    mkdirs("two/certs");
    put("two/certs/client.crt", "CRT\n", 0600);
    put("two/certs/client.key", "KEY\n", 0600);
    const char *a = put("one/config",
                        "apiVersion: v1\n"
                        "kind: Config\n"
                        "clusters:\n"
                        "- name: shared\n"
                        "  cluster: {server: \"https://one.example:6443\"}\n"
                        "contexts:\n"
                        "- name: c1\n"
                        "  context: {cluster: shared, user: u1}\n"
                        "users:\n"
                        "- name: u1\n"
                        "  user: {token: from-one}\n"
                        "- name: u2\n"
                        "  user: {token: u2-from-one}\n",
                        0600);
    const char *b = put("two/config",
                        "apiVersion: v1\n"
                        "kind: Config\n"
                        "current-context: c2\n"
                        "clusters:\n"
                        "- name: shared\n"
                        "  cluster: {server: \"https://two.example:6443\"}\n"
                        "- name: only-two\n"
                        "  cluster: {server: \"https://only-two:6443\"}\n"
                        "contexts:\n"
                        "- name: c2\n"
                        "  context: {cluster: shared, user: u2, namespace: ns2}\n"
                        "- name: c3\n"
                        "  context: {cluster: only-two, user: u3}\n"
                        "- name: c1\n"
                        "  context: {cluster: only-two, user: u3}\n"
                        "users:\n"
                        "- name: u2\n"
                        "  user: {token: u2-from-two}\n"
                        "- name: u3\n"
                        "  user:\n"
                        "    client-certificate: certs/client.crt\n"
                        "    client-key: certs/client.key\n",
                        0600);
    const char *empty = put("empty", "", 0600);
    char env[2048];
    /* a missing file and empty entries in the list are skipped */
    snprintf(env, sizeof env, "%s::%s/nonexistent:%s:%s", a, tmp, empty, b);
    setenv("KUBECONFIG", env, 1);
    csl_kube_config c;
    CU_ASSERT_FATAL(csl_kubeconfig_load(NULL, NULL, &c, err, sizeof err) == 0);
    /* current-context from the first file that sets it (two); the cluster
     * and user named "shared"/"u2" from the first file that has them (one) */
    CU_ASSERT_STRING_EQUAL(c.context_name, "c2");
    CU_ASSERT_STRING_EQUAL(c.server, "https://one.example:6443");
    CU_ASSERT_STRING_EQUAL(c.token, "u2-from-one");
    CU_ASSERT_STRING_EQUAL(c.namespace, "ns2");
    CU_ASSERT_STRING_EQUAL(c.source, a);
    csl_kube_config_free(&c);
    /* context c1 exists in both: one's wins */
    CU_ASSERT_FATAL(csl_kubeconfig_load(NULL, "c1", &c, err, sizeof err) == 0);
    CU_ASSERT_STRING_EQUAL(c.server, "https://one.example:6443");
    CU_ASSERT_STRING_EQUAL(c.token, "from-one");
    csl_kube_config_free(&c);
    /* relative certificate paths resolve against the folder of the file
     * that named them (two/), whatever the working directory */
    char cwd[512];
    CU_ASSERT_FATAL(getcwd(cwd, sizeof cwd) != NULL);
    CU_ASSERT_FATAL(chdir("/") == 0);
    int rc = csl_kubeconfig_load(NULL, "c3", &c, err, sizeof err);
    CU_ASSERT_FATAL(chdir(cwd) == 0);
    CU_ASSERT_FATAL(rc == 0);
    CU_ASSERT_STRING_EQUAL(c.server, "https://only-two:6443");
    CU_ASSERT_STRING_EQUAL(c.cert_file, path_in("two/certs/client.crt"));
    CU_ASSERT_STRING_EQUAL(c.key_file, path_in("two/certs/client.key"));
    CU_ASSERT_PTR_NULL(c.cert_data);
    csl_kube_config_free(&c);
    /* an explicit path ignores $KUBECONFIG */
    CU_ASSERT_FATAL(csl_kubeconfig_load(b, "c1", &c, err, sizeof err) == 0);
    CU_ASSERT_STRING_EQUAL(c.server, "https://only-two:6443");
    csl_kube_config_free(&c);
    /* nothing usable in the list */
    snprintf(env, sizeof env, "%s/nope1:%s/nope2", tmp, tmp);
    setenv("KUBECONFIG", env, 1);
    CU_ASSERT_EQUAL(csl_kubeconfig_load(NULL, NULL, &c, err, sizeof err), -1);
    CU_ASSERT(has("none of the files in KUBECONFIG"));
    unsetenv("KUBECONFIG");
}

static void test_home_default(void)
{
    mkdirs("home/.kube");
    const char *old = getenv("HOME");
    char *saved = old ? strdup(old) : NULL;
    setenv("HOME", path_in("home"), 1);
    unsetenv("KUBECONFIG");
    csl_kube_config c;
    CU_ASSERT_EQUAL(csl_kubeconfig_load(NULL, NULL, &c, err, sizeof err), -1);
    CU_ASSERT(has("home/.kube/config does not exist"));
    put("home/.kube/config", single, 0600);
    CU_ASSERT_EQUAL(csl_kubeconfig_load(NULL, NULL, &c, err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(c.context_name, "main");
    csl_kube_config_free(&c);
    if (saved)
        setenv("HOME", saved, 1);
    else
        unsetenv("HOME");
    free(saved);
}

static void test_files_and_tokens(void)
{
    mkdirs("files/pki");
    put("files/pki/ca.crt", "CA\n", 0600);
    put("files/pki/token", "  secret-token \n", 0600);
    const char *p = put("files/config",
                        "clusters:\n"
                        "- name: k\n"
                        "  cluster:\n"
                        "    server: https://k:443\n"
                        "    certificate-authority: pki/ca.crt\n"
                        "users:\n"
                        "- name: tok\n"
                        "  user: {token: abc.def}\n"
                        "- name: tokfile\n"
                        "  user: {tokenFile: ./pki/token}\n"
                        "- name: both\n"
                        "  user:\n"
                        "    client-certificate-data: " CERT_B64 "\n"
                        "    client-certificate: /nonexistent/is/ignored\n"
                        "    client-key-data: " KEY_B64 "\n"
                        "- name: anon\n"
                        "  user: {}\n"
                        "contexts:\n"
                        "- {name: tok, context: {cluster: k, user: tok}}\n"
                        "- {name: tokfile, context: {cluster: k, user: tokfile}}\n"
                        "- {name: both, context: {cluster: k, user: both}}\n"
                        "- {name: anon, context: {cluster: k}}\n",
                        0600);
    csl_kube_config c;
    CU_ASSERT_FATAL(csl_kubeconfig_load(p, "tok", &c, err, sizeof err) == 0);
    CU_ASSERT_STRING_EQUAL(c.ca_file, path_in("files/pki/ca.crt"));
    CU_ASSERT_PTR_NULL(c.ca_data);
    CU_ASSERT_STRING_EQUAL(c.token, "abc.def");
    CU_ASSERT_PTR_NULL(c.token_file);
    csl_kube_config_free(&c);
    CU_ASSERT_FATAL(csl_kubeconfig_load(p, "tokfile", &c, err, sizeof err) == 0);
    CU_ASSERT_STRING_EQUAL(c.token_file, path_in("files/./pki/token"));
    CU_ASSERT_PTR_NULL(c.token);
    csl_kube_config_free(&c);
    /* data wins over a file field, which is then not even opened */
    CU_ASSERT_FATAL(csl_kubeconfig_load(p, "both", &c, err, sizeof err) == 0);
    CU_ASSERT_STRING_EQUAL(c.cert_data, "CERT-PEM\n");
    CU_ASSERT_PTR_NULL(c.cert_file);
    csl_kube_config_free(&c);
    /* a context with no user is anonymous */
    CU_ASSERT_FATAL(csl_kubeconfig_load(p, "anon", &c, err, sizeof err) == 0);
    CU_ASSERT_PTR_NULL(c.token);
    CU_ASSERT_PTR_NULL(c.cert_data);
    CU_ASSERT_PTR_NULL(c.exec.command);
    csl_kube_config_free(&c);
}

static void test_insecure_warns(void)
{
    const char *p = put("insecure.yaml",
                        "clusters:\n"
                        "- {name: k, cluster: {server: \"https://127.0.0.1:1\", "
                        "insecure-skip-tls-verify: true}}\n"
                        "- {name: s, cluster: {server: \"https://127.0.0.1:1\", "
                        "insecure-skip-tls-verify: false}}\n"
                        "contexts:\n"
                        "- {name: k, context: {cluster: k}}\n"
                        "- {name: s, context: {cluster: s}}\n",
                        0600);
    csl_kube_config c;
    CU_ASSERT_FATAL(csl_kubeconfig_load(p, "s", &c, err, sizeof err) == 0);
    CU_ASSERT_FALSE(c.insecure);
    csl_kube *k = csl_kube_new(&c, NULL, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL(k);
    csl_kube_free(k);
    CU_ASSERT_FALSE(logged("insecure-skip-tls-verify"));
    csl_kube_config_free(&c);
    CU_ASSERT_FATAL(csl_kubeconfig_load(p, "k", &c, err, sizeof err) == 0);
    CU_ASSERT_TRUE(c.insecure);
    k = csl_kube_new(&c, NULL, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL(k);
    csl_kube_free(k);
    CU_ASSERT_TRUE(logged("insecure-skip-tls-verify is set"));
    csl_kube_config_free(&c);
}

/* ---------------------------------------------------------------- exec plugins */

/* Records its arguments, one env var and KUBERNETES_EXEC_INFO, then prints
 * a credential. */
static const char plugin_token[] =
    "#!/bin/sh\n"
    "printf '%s' \"$KUBERNETES_EXEC_INFO\" > \"$OUT/info.json\"\n"
    "printf '%s|' \"$@\" > \"$OUT/args\"\n"
    "printf '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\","
    "\"status\":{\"token\":\"tok-%s\",\"expirationTimestamp\":\"2030-01-02T03:04:05Z\"}}\\n' "
    "\"$FOO\"\n"
    "echo 'a harmless note' >&2\n";

static void test_exec_plugin(void)
{
    mkdirs("exec/bin");
    put("exec/bin/plugin.sh", plugin_token, 0700);
    put("exec/ca.pem", "THE-CA\n", 0600);
    char cfgtext[2048];
    snprintf(cfgtext, sizeof cfgtext,
             "clusters:\n"
             "- name: k\n"
             "  cluster: {server: \"https://k.example:6443\", certificate-authority: ca.pem}\n"
             "users:\n"
             "- name: e\n"
             "  user:\n"
             "    exec:\n"
             "      apiVersion: client.authentication.k8s.io/v1\n"
             "      command: ./bin/plugin.sh\n"
             "      args: [get-token, --cluster, \"two words\"]\n"
             "      env:\n"
             "      - {name: FOO, value: bar}\n"
             "      - {name: OUT, value: \"%s\"}\n"
             "      interactiveMode: Never\n"
             "      provideClusterInfo: true\n"
             "      installHint: install it\n"
             "contexts:\n"
             "- {name: e, context: {cluster: k, user: e}}\n"
             "current-context: e\n",
             path_in("exec"));
    const char *p = put("exec/config", cfgtext, 0600);
    csl_kube_config c;
    CU_ASSERT_FATAL(csl_kubeconfig_load(p, NULL, &c, err, sizeof err) == 0);
    CU_ASSERT_STRING_EQUAL(c.exec.command, path_in("exec/./bin/plugin.sh"));
    CU_ASSERT_STRING_EQUAL(c.exec.api_version, "client.authentication.k8s.io/v1");
    CU_ASSERT_STRING_EQUAL(c.exec.args[2], "two words");
    CU_ASSERT_PTR_NULL(c.exec.args[3]);
    CU_ASSERT_STRING_EQUAL(c.exec.env[0], "FOO=bar");
    CU_ASSERT_TRUE(c.exec.provide_cluster_info);
    CU_ASSERT_FALSE(c.exec.interactive);
    CU_ASSERT_STRING_EQUAL(c.exec.install_hint, "install it");

    csl_kube_credential cred;
    CU_ASSERT_FATAL(csl_kube_exec_credential(&c, 10000, &cred, err, sizeof err) == 0);
    CU_ASSERT_STRING_EQUAL(cred.token, "tok-bar");
    int64_t want;
    CU_ASSERT_FATAL(csl_rfc3339_parse("2030-01-02T03:04:05Z", &want) == 0);
    CU_ASSERT_EQUAL(cred.expires_ms, want);
    CU_ASSERT_EQUAL(cred.expires_ms, 1893553445000LL);
    CU_ASSERT_PTR_NULL(cred.cert_data);
    csl_kube_credential_free(&cred);
    CU_ASSERT_TRUE(logged("a harmless note"));

    /* what the plugin saw */
    FILE *f = fopen(path_in("exec/args"), "r");
    char args[256] = "";
    CU_ASSERT_FATAL(f != NULL);
    CU_ASSERT(fgets(args, sizeof args, f) != NULL);
    fclose(f);
    CU_ASSERT_STRING_EQUAL(args, "get-token|--cluster|two words|");
    f = fopen(path_in("exec/info.json"), "r");
    char info[4096] = "";
    CU_ASSERT_FATAL(f != NULL);
    size_t n = fread(info, 1, sizeof info - 1, f);
    info[n] = 0;
    fclose(f);
    cJSON *j = cJSON_Parse(info);
    CU_ASSERT_FATAL(j != NULL);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(j, "kind")->valuestring, "ExecCredential");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(j, "apiVersion")->valuestring,
                           "client.authentication.k8s.io/v1");
    cJSON *spec = cJSON_GetObjectItem(j, "spec");
    CU_ASSERT(cJSON_IsFalse(cJSON_GetObjectItem(spec, "interactive")));
    cJSON *cl = cJSON_GetObjectItem(spec, "cluster");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(cl, "server")->valuestring,
                           "https://k.example:6443");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(cl, "certificate-authority-data")->valuestring,
                           "VEhFLUNBCg=="); /* base64("THE-CA\n") */
    cJSON_Delete(j);
    csl_kube_config_free(&c);
}

static csl_kube_config exec_cfg(const char *script_rel, const char *api)
{
    csl_kube_config c = {0};
    c.server = strdup("https://k:1");
    c.exec.command = strdup(path_in(script_rel));
    c.exec.api_version = strdup(api);
    c.context_name = strdup("t");
    return c;
}

static void test_exec_certificate_v1beta1(void)
{
    mkdirs("exec");
    put("exec/cert.sh",
        "#!/bin/sh\n"
        "cat <<'EOF'\n"
        "{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"kind\":\"ExecCredential\","
        "\"status\":{\"clientCertificateData\":\"-----BEGIN CERTIFICATE-----\\nX\\n-----END "
        "CERTIFICATE-----\\n\",\"clientKeyData\":\"-----BEGIN PRIVATE KEY-----\\nY\\n-----END "
        "PRIVATE KEY-----\\n\"}}\n"
        "EOF\n",
        0700);
    csl_kube_config c = exec_cfg("exec/cert.sh", "client.authentication.k8s.io/v1beta1");
    csl_kube_credential cred;
    CU_ASSERT_FATAL(csl_kube_exec_credential(&c, 10000, &cred, err, sizeof err) == 0);
    CU_ASSERT_PTR_NULL(cred.token);
    CU_ASSERT_EQUAL(cred.expires_ms, 0); /* none: valid until a 401 */
    CU_ASSERT_PTR_NOT_NULL(strstr(cred.cert_data, "-----BEGIN CERTIFICATE-----\nX\n"));
    CU_ASSERT_EQUAL(cred.cert_data_len, strlen(cred.cert_data));
    CU_ASSERT_PTR_NOT_NULL(strstr(cred.key_data, "PRIVATE KEY"));
    csl_kube_credential_free(&cred);
    csl_kube_config_free(&c);
}

typedef struct plugin_case {
    const char *script;
    const char *api;
    long timeout_ms;
    const char *want[3];
} plugin_case;

static void test_exec_errors(void)
{
    mkdirs("exec");
    static const plugin_case cases[] = {
        {"echo 'error: you must log in first (run: cloud login)' >&2\nexit 2\n",
         "client.authentication.k8s.io/v1",
         5000,
         {"exited with status 2", "you must log in first", "bad.sh"}},
        {"echo 'this is not json'\n",
         "client.authentication.k8s.io/v1",
         5000,
         {"did not print an ExecCredential", "this is not json"}},
        {"echo '{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"kind\":"
         "\"ExecCredential\",\"status\":{\"token\":\"x\"}}'\n",
         "client.authentication.k8s.io/v1",
         5000,
         {"answered apiVersion client.authentication.k8s.io/v1beta1", "asked for"}},
        {"echo '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"Pod\"}'\n",
         "client.authentication.k8s.io/v1",
         5000,
         {"kind Pod, expected ExecCredential"}},
        {"echo '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\","
         "\"status\":{}}'\n",
         "client.authentication.k8s.io/v1",
         5000,
         {"neither status.token nor"}},
        {"echo '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\","
         "\"status\":{\"clientCertificateData\":\"C\"}}'\n",
         "client.authentication.k8s.io/v1",
         5000,
         {"clientCertificateData without status.clientKeyData"}},
        {"echo '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\","
         "\"status\":{\"token\":\"t\",\"expirationTimestamp\":\"tomorrow\"}}'\n",
         "client.authentication.k8s.io/v1",
         5000,
         {"expirationTimestamp is not an RFC 3339"}},
        {"exec sleep 30\n",
         "client.authentication.k8s.io/v1",
         300,
         {"did not finish within 300 ms"}},
        {"kill -9 $$\n", "client.authentication.k8s.io/v1", 5000, {"killed by signal 9"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[1024];
        snprintf(text, sizeof text, "#!/bin/sh\n%s", cases[i].script);
        put("exec/bad.sh", text, 0700);
        csl_kube_config c = exec_cfg("exec/bad.sh", cases[i].api);
        csl_kube_credential cred = {0};
        int64_t t0 = csl_mono_ns();
        CU_ASSERT_EQUAL(csl_kube_exec_credential(&c, cases[i].timeout_ms, &cred, err, sizeof err),
                        -1);
        CU_ASSERT((csl_mono_ns() - t0) / 1000000 < 10000); /* never waits for sleep 30 */
        for (int w = 0; w < 3 && cases[i].want[w]; w++) CU_ASSERT(has(cases[i].want[w]));
        CU_ASSERT_PTR_NULL(cred.token);
        csl_kube_config_free(&c);
    }

    /* not found: names the command and gives the hint */
    csl_kube_config c = exec_cfg("exec/nothing-here.sh", "client.authentication.k8s.io/v1");
    CU_ASSERT_EQUAL(csl_kube_exec_credential(&c, 1000, NULL, err, sizeof err), -1);
    CU_ASSERT(has("nothing-here.sh\" not found or not executable"));
    free(c.exec.command);
    c.exec.command = strdup("csl-no-such-plugin");
    c.exec.install_hint = strdup("Install it with: apt install csl-plugin");
    CU_ASSERT_EQUAL(csl_kube_exec_credential(&c, 1000, NULL, err, sizeof err), -1);
    CU_ASSERT(has("\"csl-no-such-plugin\" not found in PATH"));
    CU_ASSERT(has("apt install csl-plugin"));
    /* found on PATH */
    free(c.exec.command);
    c.exec.command = strdup("true");
    CU_ASSERT_EQUAL(csl_kube_exec_credential(&c, 5000, NULL, err, sizeof err), -1);
    CU_ASSERT(has("nothing on stdout"));
    /* a terminal-only plugin is refused before it runs */
    c.exec.interactive = true;
    CU_ASSERT_EQUAL(csl_kube_exec_credential(&c, 5000, NULL, err, sizeof err), -1);
    CU_ASSERT(has("interactiveMode Always"));
    csl_kube_config_free(&c);
    /* a file that is there but not executable */
    put("exec/noexec.sh", "#!/bin/sh\necho hi\n", 0600);
    c = exec_cfg("exec/noexec.sh", "client.authentication.k8s.io/v1");
    CU_ASSERT_EQUAL(csl_kube_exec_credential(&c, 1000, NULL, err, sizeof err), -1);
    CU_ASSERT(has("not found or not executable"));
    csl_kube_config_free(&c);
}

/* ---------------------------------------------------------------- errors */

typedef struct bad_case {
    const char *text;
    const char *context;
    const char *want[3];
} bad_case;

static void test_bad_files(void)
{
    mkdirs("bad");
    static const bad_case cases[] = {
        {"clusters:\n- name: a\n  cluster: {server: [unclosed\n",
         NULL,
         {"bad.yaml:4:1:", "cannot load kubeconfig"}},
        {"clusters:\n  - name: a\n   bad-indent: 1\n", NULL, {"bad.yaml:3:"}},
        {"- just\n- a list\n", NULL, {"bad.yaml:1:1:", "must be a mapping"}},
        {"contexts:\n- {name: a, context: {cluster: c}}\n",
         NULL,
         {"no current-context in", "bad.yaml"}},
        {"current-context: nope\ncontexts: []\n",
         NULL,
         {"context \"nope\" not found in", "bad.yaml"}},
        {"contexts:\n- {name: a, context: {cluster: c}}\n", "zzz", {"context \"zzz\" not found"}},
        {"current-context: a\ncontexts:\n- name: a\n  context: {cluster: missing-cl, user: u}\n",
         NULL,
         {"bad.yaml:4:", "cluster \"missing-cl\" (of context \"a\") not found in"}},
        {"current-context: a\nclusters:\n- {name: c, cluster: {server: \"https://x\"}}\n"
         "contexts:\n- name: a\n  context: {cluster: c, user: ghost}\n",
         NULL,
         {"user \"ghost\" (of context \"a\") not found in", "bad.yaml:6:"}},
        {"current-context: a\nclusters:\n- {name: c, cluster: {insecure-skip-tls-verify: true}}\n"
         "contexts:\n- {name: a, context: {cluster: c}}\n",
         NULL,
         {"cluster \"c\" has no \"server\"", "bad.yaml:3:"}},
        {"current-context: a\nclusters:\n- name: c\n  cluster:\n    server: https://x\n"
         "    certificate-authority: /nonexistent/dir/ca.crt\n"
         "contexts:\n- {name: a, context: {cluster: c}}\n",
         NULL,
         {"bad.yaml:6:", "/nonexistent/dir/ca.crt", "No such file or directory"}},
        {"current-context: a\nclusters:\n- {name: c, cluster: {server: \"https://x\"}}\n"
         "users:\n- name: u\n  user:\n    client-certificate: missing.crt\n"
         "    client-key: missing.key\n"
         "contexts:\n- {name: a, context: {cluster: c, user: u}}\n",
         NULL,
         {"bad/missing.crt", "client-certificate", "bad.yaml:7:"}},
        {"current-context: a\nclusters:\n- name: c\n  cluster:\n    server: https://x\n"
         "    certificate-authority-data: \"not*base64!\"\n"
         "contexts:\n- {name: a, context: {cluster: c}}\n",
         NULL,
         {"bad.yaml:6:", "certificate-authority-data\" is not valid base64"}},
        {"current-context: a\nclusters:\n- {name: c, cluster: {server: \"https://x\"}}\n"
         "users:\n- name: u\n  user:\n    client-certificate-data: " CERT_B64 "\n"
         "contexts:\n- {name: a, context: {cluster: c, user: u}}\n",
         NULL,
         {"user \"u\" has a client certificate but no client key"}},
        {"current-context: a\nclusters:\n- {name: c, cluster: {server: \"https://x\"}}\n"
         "users:\n- name: u\n  user:\n    auth-provider: {name: gcp}\n"
         "contexts:\n- {name: a, context: {cluster: c, user: u}}\n",
         NULL,
         {"auth-provider is not supported", "bad.yaml:7:"}},
        {"current-context: a\nclusters:\n- {name: c, cluster: {server: \"https://x\"}}\n"
         "users:\n- name: u\n  user:\n    exec: {command: x, apiVersion: "
         "client.authentication.k8s.io/v1alpha1}\n"
         "contexts:\n- {name: a, context: {cluster: c, user: u}}\n",
         NULL,
         {"exec apiVersion must be", "v1alpha1"}},
        {"current-context: a\nclusters:\n- {name: c, cluster: {server: \"https://x\"}}\n"
         "users:\n- name: u\n  user:\n    token: 12345\n"
         "contexts:\n- {name: a, context: {cluster: c, user: u}}\n",
         NULL,
         {"\"token\" must be a string", "bad.yaml:7:"}},
        {"clusters: {name: c}\ncurrent-context: a\ncontexts:\n- {name: a, context: {cluster: c}}\n",
         NULL,
         {"\"clusters\" must be a list", "bad.yaml:1:"}},
        {"current-context: a\ncontexts:\n- {context: {cluster: c}}\n",
         NULL,
         {"needs a \"name\"", "bad.yaml:3:"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *p = put("bad/bad.yaml", cases[i].text, 0600);
        csl_kube_config c;
        memset(&c, 0x33, sizeof c);
        err[0] = 0;
        CU_ASSERT_EQUAL(csl_kubeconfig_load(p, cases[i].context, &c, err, sizeof err), -1);
        for (int w = 0; w < 3 && cases[i].want[w]; w++) CU_ASSERT(has(cases[i].want[w]));
        CU_ASSERT_EQUAL(((unsigned char *)&c)[0], 0x33); /* *out untouched */
    }
    csl_kube_config c;
    CU_ASSERT_EQUAL(csl_kubeconfig_load(path_in("bad/none.yaml"), NULL, &c, err, sizeof err), -1);
    CU_ASSERT(has("bad/none.yaml"));
    CU_ASSERT(has("No such file or directory"));
    /* a certificate file that exists but cannot be read (skip as root) */
    if (geteuid() != 0) {
        put("bad/locked.crt", "x", 0000);
        put("bad/l.yaml",
            "current-context: a\nclusters:\n- name: c\n  cluster:\n    server: https://x\n"
            "    certificate-authority: locked.crt\ncontexts:\n- {name: a, context: {cluster: "
            "c}}\n",
            0600);
        CU_ASSERT_EQUAL(csl_kubeconfig_load(path_in("bad/l.yaml"), NULL, &c, err, sizeof err), -1);
        CU_ASSERT(has("locked.crt"));
        CU_ASSERT(has("Permission denied"));
    }
    /* NULL err buffer is allowed */
    CU_ASSERT_EQUAL(csl_kubeconfig_load(path_in("bad/none.yaml"), NULL, &c, NULL, 0), -1);
}

/* ---------------------------------------------------------------- in-cluster */

static void test_incluster(void)
{
    mkdirs("sa");
    setenv("CSL_SERVICEACCOUNT_DIR", path_in("sa"), 1);
    unsetenv("KUBERNETES_SERVICE_HOST");
    csl_kube_config c;
    CU_ASSERT_EQUAL(csl_kube_incluster_config(&c, err, sizeof err), -1);
    CU_ASSERT(has("KUBERNETES_SERVICE_HOST"));
    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    CU_ASSERT_EQUAL(csl_kube_incluster_config(&c, err, sizeof err), -1);
    CU_ASSERT(has("sa/token"));
    put("sa/token", "eyJhbGciOi.sa-token\n", 0600);
    CU_ASSERT_EQUAL(csl_kube_incluster_config(&c, err, sizeof err), -1);
    CU_ASSERT(has("sa/ca.crt"));
    put("sa/ca.crt", "CA\n", 0600);
    CU_ASSERT_FATAL(csl_kube_incluster_config(&c, err, sizeof err) == 0);
    CU_ASSERT_STRING_EQUAL(c.server, "https://10.96.0.1:443");
    CU_ASSERT_STRING_EQUAL(c.token_file, path_in("sa/token"));
    CU_ASSERT_STRING_EQUAL(c.ca_file, path_in("sa/ca.crt"));
    CU_ASSERT_STRING_EQUAL(c.namespace, "default"); /* no namespace file */
    CU_ASSERT_PTR_NULL(c.token); /* read by the client, and re-read on rotation */
    csl_kube_config_free(&c);
    put("sa/namespace", "operators\n", 0600);
    setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
    CU_ASSERT_FATAL(csl_kube_incluster_config(&c, err, sizeof err) == 0);
    CU_ASSERT_STRING_EQUAL(c.server, "https://[fd00::1]:443");
    CU_ASSERT_STRING_EQUAL(c.namespace, "operators");
    csl_kube *k = csl_kube_new(&c, NULL, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL(k);
    if (k) CU_ASSERT_STRING_EQUAL(csl_kube_namespace(k), "operators");
    csl_kube_free(k);
    csl_kube_config_free(&c);
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
    unsetenv("CSL_SERVICEACCOUNT_DIR");
}

/* ---------------------------------------------------------------- suite */

static int suite_init(void)
{
    log_file = tmpfile();
    if (!log_file) return 1;
    csl_log_setup("test_kubeconfig", CSL_LOG_INFO, CSL_LOG_TEXT, fileno(log_file));
    snprintf(tmp, sizeof tmp, "/tmp/test_kubeconfig.XXXXXX");
    return mkdtemp(tmp) ? 0 : 1;
}

static int suite_cleanup(void)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    int rc = system(cmd);
    csl_log_setup("test_kubeconfig", CSL_LOG_WARN, CSL_LOG_TEXT, 2);
    if (log_file) fclose(log_file);
    return rc == 0 ? 0 : 1;
}

static CU_TestInfo tests[] = {
    {"single file, data fields, --context, copy", test_single_file},
    {"KUBECONFIG merge: first wins, relative paths", test_kubeconfig_merge},
    {"~/.kube/config by default", test_home_default},
    {"file fields, token, tokenFile, anonymous", test_files_and_tokens},
    {"insecure-skip-tls-verify only when set, warned", test_insecure_warns},
    {"exec plugin: token, expiry, KUBERNETES_EXEC_INFO", test_exec_plugin},
    {"exec plugin: client certificate, v1beta1", test_exec_certificate_v1beta1},
    {"exec plugin errors", test_exec_errors},
    {"bad kubeconfigs: positions and names", test_bad_files},
    {"in-cluster config", test_incluster},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"kubeconfig", suite_init, suite_cleanup, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

CSL_TEST_MAIN(suites)
