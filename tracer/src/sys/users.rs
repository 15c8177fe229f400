//! The user database: a user's name and home, and the groups they belong
//! to (`pytrace run` under `sudo` runs its command as the invoking user).

use std::ffi::CString;

/// `uid`'s name and home directory from the user database.
pub fn account(uid: u32) -> Option<(String, String)> {
    let mut buffer = vec![0_u8; 16 * 1024];
    // SAFETY: an all-zero passwd is a valid out-parameter.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found = std::ptr::null_mut();
    // SAFETY: the buffers are valid for their stated lengths; `found` is set on success.
    let status = unsafe { libc::getpwuid_r(uid, &mut entry, buffer.as_mut_ptr().cast(), buffer.len(), &mut found) };
    if status != 0 || found.is_null() {
        return None;
    }
    // SAFETY: on success both fields point to NUL-terminated strings in `buffer`.
    let text = |field: *const libc::c_char| unsafe { std::ffi::CStr::from_ptr(field) }.to_string_lossy().into_owned();
    Some((text(entry.pw_name), text(entry.pw_dir)))
}

/// The groups `name` belongs to, with `gid`.
pub fn groups_of(name: &str, gid: u32) -> Vec<u32> {
    let Ok(user) = CString::new(name) else { return vec![gid] };
    let mut groups = vec![0 as libc::gid_t; 256];
    let mut count = groups.len() as libc::c_int;
    // SAFETY: `groups` has room for `count` entries; getgrouplist updates `count`.
    let found = unsafe { libc::getgrouplist(user.as_ptr(), gid, groups.as_mut_ptr(), &mut count) };
    if found < 0 {
        return vec![gid];
    }
    groups.truncate(count.max(0) as usize);
    groups
}
