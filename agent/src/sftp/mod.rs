//! The SFTP server of the agent (russh + russh-sftp): logins are checked by the panel
//! over the tunnel; files go through the same sandbox as the file API.
