# Cluster environments: the local control plane (a real kube-apiserver and
# etcd built from their Go modules, kind/local/), kind and Minikube for
# machines with a container engine (kind/kind.sh, kind/minikube.sh), and the
# manifests in config/. Included by the main Makefile; every recipe is a
# script, so each can also be run by hand.

##@ Cluster

KIND_CLUSTER ?= cloudserver-lab
MINIKUBE_PROFILE ?= cloudserver-lab
CONTAINER_TOOL ?= docker
# Seconds cluster-restart-apiserver keeps the API server down.
DOWN ?= 0

export KIND_CLUSTER MINIKUBE_PROFILE CONTAINER_TOOL

.PHONY: cluster-up
cluster-up: ## Local control plane up (builds kube-apiserver + etcd once); kubeconfig in .cluster/kubeconfig
	$(Q)kind/local/up.sh

.PHONY: cluster-down
cluster-down: ## Stop the local control plane by its recorded PIDs, leaving no process
	$(Q)kind/local/down.sh

.PHONY: cluster-restart-apiserver
cluster-restart-apiserver: ## Restart kube-apiserver alone, same port (DOWN=seconds to stay down)
	$(Q)kind/local/restart-apiserver.sh $(DOWN)

.PHONY: cluster-build
cluster-build: ## Build kube-apiserver and etcd into the cache (~/.cache/cloudserver-lab) without starting them
	$(Q)kind/local/build.sh all

.PHONY: cluster-test
cluster-test: ## Local-plane tests: CRD validation, v1alpha1->v1 upgrade, RBAC, manifests (own plane, own ports)
	$(Q)tests/cluster/run.sh

.PHONY: crds
crds: ## Regenerate config/crd/bases from config/crd/src
	$(Q)config/crd/generate.sh

.PHONY: kind-up
kind-up: ## Create the kind cluster (KIND_CLUSTER, default cloudserver-lab) from kind/cluster.yaml
	$(Q)kind/kind.sh up

.PHONY: kind-deploy
kind-deploy: ## Build the images, load them into kind, install CRDs, RBAC, operator and mockcloud
	$(Q)kind/kind.sh deploy

.PHONY: kind-down
kind-down: ## Delete the kind cluster
	$(Q)kind/kind.sh down

.PHONY: minikube-up
minikube-up: ## Start the Minikube profile (MINIKUBE_PROFILE, default cloudserver-lab)
	$(Q)kind/minikube.sh up

.PHONY: minikube-deploy
minikube-deploy: ## Build the images, load them into Minikube, install CRDs, RBAC, operator and mockcloud
	$(Q)kind/minikube.sh deploy

.PHONY: minikube-down
minikube-down: ## Delete the Minikube profile
	$(Q)kind/minikube.sh down

.PHONY: images
images: ## Build the container images cloudserver-operator:dev and mockcloud:dev
	$(Q)kind/images.sh
