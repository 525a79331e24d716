"""Flash-sale load tests: one scenario definition, a Python crowd, k6 scripts, a runner and reports."""
