package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/livecore/livecore/adapters/httpapi"
	"github.com/livecore/livecore/internal/stack"
	"github.com/livecore/livecore/regions"
)

func newKeysCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Create and revoke API keys (in --data-dir's api.db, or a multi-region control plane)",
		Long: `keys manages the API keys that 'livecore dev' checks. A key belongs to one
tenant and has one role: checkout (orders, checkout, cancel, refunds, returns,
drops), finance (reads, refunds, audit) or ops (shipments, stock, drops).
Keys are stored hashed; the plaintext is printed once, on creation. The
server may keep accepting a revoked key for up to 5 seconds (its cache).

Multi-region deployments keep keys in the control-plane database, which
every region reads: pass --control-plane DSN (env LIVECORE_CONTROL_PLANE)
instead of --data-dir.`,
	}
	cmd.AddCommand(newKeysCreateCmd(), newKeysRevokeCmd())
	return cmd
}

func newKeysCreateCmd() *cobra.Command {
	var dataDir, controlPlane, tenant, role string
	cmd := &cobra.Command{
		Use:     "create",
		Short:   "Create a key for a tenant and role, and print it (once)",
		Example: "  livecore keys create --tenant acme --role checkout",
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := httpapi.ParseTenantID(tenant)
			if err != nil {
				return fmt.Errorf("--tenant: %w", err)
			}
			r, err := httpapi.ParseRole(role)
			if err != nil {
				return fmt.Errorf("--role: %w (want checkout, finance or ops)", err)
			}
			keys, closeDB, err := openKeys(cmd, dataDir, controlPlane)
			if err != nil {
				return err
			}
			defer closeDB()
			plain, err := keys.CreateKey(cmd.Context(), t, r)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), plain)
			fmt.Fprintf(cmd.ErrOrStderr(), "key %s for tenant %s, role %s: store it now, it is not shown again\n", httpapi.KeyID(plain), t, r)
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", envOr("LIVECORE_DATA_DIR", "./data"), "data directory of 'livecore dev' (env LIVECORE_DATA_DIR)")
	cmd.Flags().StringVar(&controlPlane, "control-plane", os.Getenv("LIVECORE_CONTROL_PLANE"), "multi-region: the control plane's DSN (postgres://... or sqlite:PATH); overrides --data-dir (env LIVECORE_CONTROL_PLANE)")
	cmd.Flags().StringVar(&tenant, "tenant", "", "tenant ID (a-z, 0-9, - and _)")
	cmd.Flags().StringVar(&role, "role", "", "checkout, finance or ops")
	_ = cmd.MarkFlagRequired("tenant")
	_ = cmd.MarkFlagRequired("role")
	return cmd
}

func newKeysRevokeCmd() *cobra.Command {
	var dataDir, controlPlane, id string
	cmd := &cobra.Command{
		Use:     "revoke",
		Short:   "Revoke a key by its ID (the 16 hex digits after lc_)",
		Example: "  livecore keys revoke --id 3f2a9c0d1e4b5a67",
		RunE: func(cmd *cobra.Command, _ []string) error {
			keys, closeDB, err := openKeys(cmd, dataDir, controlPlane)
			if err != nil {
				return err
			}
			defer closeDB()
			if err := keys.RevokeKey(cmd.Context(), id); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "key %s revoked\n", id)
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", envOr("LIVECORE_DATA_DIR", "./data"), "data directory of 'livecore dev' (env LIVECORE_DATA_DIR)")
	cmd.Flags().StringVar(&controlPlane, "control-plane", os.Getenv("LIVECORE_CONTROL_PLANE"), "multi-region: the control plane's DSN (postgres://... or sqlite:PATH); overrides --data-dir (env LIVECORE_CONTROL_PLANE)")
	cmd.Flags().StringVar(&id, "id", "", "the key's public ID")
	_ = cmd.MarkFlagRequired("id")
	return cmd
}

func openKeys(cmd *cobra.Command, dataDir, controlPlane string) (*httpapi.Keys, func(), error) {
	if controlPlane != "" {
		cp, err := regions.OpenControlPlane(cmd.Context(), controlPlane)
		if err != nil {
			return nil, nil, err
		}
		store := httpapi.NewSQLKeyStore(cp.DB())
		if err := store.Migrate(cmd.Context()); err != nil {
			cp.Close()
			return nil, nil, err
		}
		return &httpapi.Keys{Store: store}, func() { cp.Close() }, nil
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, nil, err
	}
	db, err := stack.OpenAPIDB(dataDir)
	if err != nil {
		return nil, nil, err
	}
	store := httpapi.NewSQLKeyStore(db)
	if err := store.Migrate(cmd.Context()); err != nil {
		db.Close()
		return nil, nil, err
	}
	return &httpapi.Keys{Store: store}, func() { db.Close() }, nil
}
