/* kube_testutil.h — what the Kubernetes integration tests share: a client
 * for the plane under test, and installing the project's CRDs on it.
 * Header-only (each test file is its own program).
 *
 * kt_connect loads the kubeconfig named by $CSL_KUBECONFIG and makes a
 * client with opt (may be NULL). It returns 0, or -1 after printing why —
 * an unset CSL_KUBECONFIG is a failure, never a skip, so a broken set-up
 * cannot pass silently. On failure *cfg holds nothing to free.
 *
 * kt_apply_crds server-side-applies every document of every *.yaml in
 * config/crd/bases (or $CSL_CRD_DIR) with the given field manager, forcing
 * ownership. It returns 0, or -1 after printing what failed; finding no CRD
 * at all is a failure too. Waiting until the new resources answer is the
 * caller's business. */
#ifndef KUBE_TESTUTIL_H
#define KUBE_TESTUTIL_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csl/kube.h"
#include "csl/yaml.h"

static const csl_kube_resource kt_crd_res = {"apiextensions.k8s.io", "v1",
                                             "customresourcedefinitions", false};

static inline int kt_connect(const csl_kube_options *opt, csl_kube_config *cfg, csl_kube **out)
{
    const char *kc = getenv("CSL_KUBECONFIG");
    if (!kc || !*kc) {
        fprintf(stderr, "CSL_KUBECONFIG is not set: this test needs a real kube-apiserver. Run "
                        "`make kube-integration` (brings up the local plane), or export "
                        "CSL_KUBECONFIG=/path/to/kubeconfig\n");
        return -1;
    }
    char err[1024];
    if (csl_kubeconfig_load(kc, NULL, cfg, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    *out = csl_kube_new(cfg, opt, err, sizeof err);
    if (!*out) {
        fprintf(stderr, "%s\n", err);
        csl_kube_config_free(cfg);
        return -1;
    }
    return 0;
}

static inline int kt_apply_crds(csl_kube *kube, const char *field_manager)
{
    const char *dir = getenv("CSL_CRD_DIR");
    if (!dir) dir = "config/crd/bases";
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "cannot open %s (run from the repository root or set CSL_CRD_DIR)\n", dir);
        return -1;
    }
    struct dirent *de;
    int n = 0, rc = 0;
    while ((de = readdir(d)) && rc == 0) {
        size_t l = strlen(de->d_name);
        if (l < 6 || strcmp(de->d_name + l - 5, ".yaml") != 0) continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        csl_yaml_err ye;
        csl_yaml *y = csl_yaml_load_file(path, &ye);
        if (!y) {
            char m[512];
            csl_yaml_err_format(&ye, m, sizeof m);
            fprintf(stderr, "%s\n", m);
            rc = -1;
            break;
        }
        for (size_t i = 0; i < csl_yaml_count(y) && rc == 0; i++) {
            const cJSON *doc = csl_yaml_doc(y, i);
            if (!cJSON_IsObject(doc)) continue;
            char *body = cJSON_PrintUnformatted(doc);
            csl_kube_patch_opts po = {.field_manager = field_manager, .force = true};
            csl_kube_error e;
            cJSON *r = csl_kube_patch(kube, &kt_crd_res, NULL, csl_kube_obj_name(doc), NULL,
                                      CSL_PATCH_APPLY, body, &po, &e);
            if (!r) {
                fprintf(stderr, "apply CRD %s from %s: %s (%s)\n", csl_kube_obj_name(doc), path,
                        e.message, csl_kube_code_name(e.code));
                rc = -1;
            }
            cJSON_Delete(r);
            free(body);
            n++;
        }
        csl_yaml_free(y);
    }
    closedir(d);
    if (rc == 0 && n == 0) {
        fprintf(stderr, "no CRDs in %s\n", dir);
        return -1;
    }
    return rc;
}

#endif
