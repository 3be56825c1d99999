//! Seed 000's bank account: deposits and withdrawals that can never overdraw.

use std::sync::{Mutex, PoisonError};

use thiserror::Error;

/// A withdrawal larger than the balance; nothing was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("cannot withdraw {amount}: the balance is {balance}")]
pub struct InsufficientFunds {
    /// The balance at the time.
    pub balance: u64,
    /// The amount asked for.
    pub amount: u64,
}

/// A balance behind a lock. The check and the update of a withdrawal happen under one
/// lock acquisition: checking in one critical section and subtracting in another
/// would let two withdrawals both pass the check and overdraw.
///
/// ```
/// use concur::sync::BankAccount;
///
/// let account = BankAccount::new(100);
/// account.deposit(50);
/// assert!(account.withdraw(120).is_ok());
/// assert!(account.withdraw(31).is_err()); // only 30 left: refused, nothing taken
/// assert_eq!(account.balance(), 30);
/// ```
#[derive(Debug, Default)]
pub struct BankAccount {
    balance: Mutex<u64>,
}

impl BankAccount {
    /// An account holding `initial`.
    pub fn new(initial: u64) -> Self {
        Self {
            balance: Mutex::new(initial),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, u64> {
        self.balance.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds `amount`; returns the new balance. Saturates instead of overflowing.
    pub fn deposit(&self, amount: u64) -> u64 {
        let mut balance = self.lock();
        *balance = balance.saturating_add(amount);
        *balance
    }

    /// Takes `amount` if the balance covers it; returns the new balance.
    pub fn withdraw(&self, amount: u64) -> Result<u64, InsufficientFunds> {
        let mut balance = self.lock();
        if *balance < amount {
            return Err(InsufficientFunds {
                balance: *balance,
                amount,
            });
        }
        *balance -= amount;
        Ok(*balance)
    }

    /// The current balance.
    pub fn balance(&self) -> u64 {
        *self.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn concurrent_operations_never_overdraw_and_balance_matches_the_ledger() {
        let account = BankAccount::new(1000);
        let deposited = AtomicU64::new(0);
        let withdrawn = AtomicU64::new(0);
        let refused = AtomicU64::new(0);
        std::thread::scope(|s| {
            for seed in 0..10 {
                let (account, deposited, withdrawn, refused) =
                    (&account, &deposited, &withdrawn, &refused);
                s.spawn(move || {
                    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(seed);
                    for _ in 0..1000 {
                        let amount = rng.random_range(1..=100);
                        if rng.random_bool(0.4) {
                            account.deposit(amount);
                            deposited.fetch_add(amount, Ordering::Relaxed);
                        } else {
                            match account.withdraw(amount) {
                                Ok(_) => withdrawn.fetch_add(amount, Ordering::Relaxed),
                                Err(e) => {
                                    assert!(e.balance < e.amount);
                                    refused.fetch_add(1, Ordering::Relaxed)
                                }
                            };
                        }
                    }
                });
            }
        });
        let expected = 1000 + deposited.into_inner() - withdrawn.into_inner();
        assert_eq!(account.balance(), expected);
        assert!(
            refused.into_inner() > 0,
            "withdrawals outnumber deposits, so some are refused"
        );
    }
}
